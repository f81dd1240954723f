"""Fixtures shared by the benchmarks: the client audience, campaigns and runs, message
partitions, a ready-to-dispatch run of due messages, and the API user."""

from __future__ import annotations

import time

from bench.db import execute, fetchall, fetchval, vacuum_analyze

# 20 real IANA zones: whole, half and quarter-hour offsets, with and without DST, both
# hemispheres, so the planner really computes 20 different sending instants.
BENCH_TIMEZONES = (
    "UTC",
    "Europe/Moscow",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Kaliningrad",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Kamchatka",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Australia/Adelaide",
)


def ensure_clients(count: int, *, tag: str = "bench", phone_prefix: str = "79") -> int:
    """Exactly `count` active clients with `tag`, spread evenly over BENCH_TIMEZONES.

    Reused when already there (the fixture for 1M clients takes a few seconds); rebuilt with
    one set-based INSERT ... SELECT generate_series otherwise. Phone numbers are
    `phone_prefix` + a zero-padded counter, so fixtures with different prefixes never collide.
    """
    existing = fetchval(
        "SELECT count(*) FROM api_client WHERE tag = %s AND deleted_at IS NULL", [tag]
    )
    if existing == count:
        return 0
    started = time.perf_counter()
    execute("DELETE FROM api_client WHERE tag = %s", [tag])
    digits = 11 - len(phone_prefix)
    execute(
        "INSERT INTO api_client (phone_number, mobile_operator_code, tag, timezone,"
        " created_at, updated_at, deleted_at)"
        " SELECT %s || lpad(i::text, %s, '0'), '9' || lpad((i %% 100)::text, 2, '0'), %s,"
        " (%s::text[])[1 + i %% %s], now(), now(), NULL"
        " FROM generate_series(1, %s) AS i",
        [phone_prefix, digits, tag, list(BENCH_TIMEZONES), len(BENCH_TIMEZONES), count],
    )
    vacuum_analyze("api_client")
    print(f"fixture: {count:,} clients tagged {tag!r} in {time.perf_counter() - started:.1f} s")
    return count


def message_partitions() -> list[str]:
    """The partitions of api_message (one per run: `api_message_r<run id>`), by name."""
    rows = fetchall(
        "SELECT relid::regclass::text FROM pg_partition_tree('api_message') WHERE isleaf"
        " ORDER BY relid"
    )
    return [name for (name,) in rows]


def drop_message_partitions() -> int:
    """Drop every partition of api_message (TRUNCATE empties them but keeps them); returns
    how many. One DROP per statement, so no transaction holds every partition's lock."""
    names = message_partitions()
    for name in names:
        execute(f"DROP TABLE IF EXISTS {name}")  # noqa: S608 - names read from the catalog
    return len(names)


def reset_campaigns() -> None:
    """Empty messages (their partitions dropped), runs and campaigns (clients are kept: they
    are the slow fixture)."""
    drop_message_partitions()
    execute("TRUNCATE api_message, api_runstatuscount, api_campaignrun, api_testsend, api_campaign")


def create_campaign_and_run(
    *,
    tag: str = "bench",
    days: float = 3,
    start_in_seconds: float = 0,
    campaign_status: str = "scheduled",
    run_status: str = "scheduled",
):
    """A campaign with a 09:00-21:00 daily window starting now (+ start_in_seconds) and ending
    `days` later, and its first run."""
    from datetime import time as wall_time
    from datetime import timedelta

    from django.utils import timezone

    from api.models import Campaign, CampaignRun

    start = timezone.now() + timedelta(seconds=start_in_seconds)
    campaign = Campaign.objects.create(
        text_message="Benchmark message",
        start_datetime=start,
        end_datetime=start + timedelta(days=days),
        time_interval_start=wall_time(9, 0),
        time_interval_end=wall_time(21, 0),
        tag=tag,
        status=campaign_status,
    )
    run = CampaignRun.objects.create(campaign=campaign, number=1, status=run_status)
    return campaign, run


def prepare_messages(count: int) -> None:
    """`count` due pending messages of one running campaign, written with set-based SQL into
    the run's own partition (loaded bare, then indexed in bulk, as planning does)."""
    from django.core.management import call_command
    from django.db import transaction

    from api.message_ids import MESSAGE_ID_RUN_STRIDE
    from api.services.counters import add_counts
    from api.services.sql.partitions import create_run_partition

    call_command("migrate", verbosity=0)
    # TRUNCATE empties the message partitions but keeps them: drop them, so the run (id 1
    # again after RESTART IDENTITY) gets a fresh one and every round starts alike.
    drop_message_partitions()
    execute(
        "TRUNCATE api_message, api_runstatuscount, api_campaignrun, api_testsend, api_campaign,"
        " api_client"
        " RESTART IDENTITY CASCADE"
    )
    execute(
        "INSERT INTO api_client (phone_number, mobile_operator_code, tag, timezone,"
        " created_at, updated_at) SELECT (79000000000 + g)::text, '900', 'bench', 'UTC',"
        " now(), now() FROM generate_series(1, %s) g",
        [count],
    )
    execute(
        "INSERT INTO api_campaign (text_message, start_datetime, end_datetime, tag,"
        " client_filter, status, created_at, updated_at) VALUES ('Bench message',"
        " now() - interval '1 hour', now() + interval '1 day', 'bench', '{}', 'running',"
        " now(), now())"
    )
    run_id = fetchval(
        "INSERT INTO api_campaignrun (campaign_id, number, status, force_resend,"
        " planned_messages, skipped_clients, error, created_at, planned_at)"
        " SELECT id, 1, 'running', false, %s, 0, '', now(), now() FROM api_campaign"
        " RETURNING id",
        [count],
    )
    # Message ids are derived: run * 2**32 + client (api.message_ids).
    load = (
        "INSERT INTO {partition} (id, run_id, client_id, status, planned_send_at,"
        " next_attempt_at, attempts, last_error, created_at)"
        f" SELECT %s * {MESSAGE_ID_RUN_STRIDE} + id, %s, id, 'pending',"
        " now() - interval '1 minute', now() - interval '1 minute', 0, '', now() FROM api_client",
        [run_id, run_id],
    )
    with transaction.atomic():
        add_counts(run_id, {"pending": create_run_partition(run_id, load=load)})
    vacuum_analyze("api_message")
    execute("ANALYZE api_client")


def api_user(username: str, password: str | None = None):
    """The user the benchmark signs in as (its password set when given)."""
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username=username)
    if password is not None:
        user.set_password(password)
        user.save()
    return user
