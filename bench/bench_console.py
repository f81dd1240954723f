"""The operator console at scale: the campaign page, its activity JSON, the campaign list and
the message history on a run of N messages (default 1,000,000) on Postgres, and what the
sent-per-minute triggers (migration 0012) cost.

    .venv/bin/python bench/bench_console.py --messages 1000000
    .venv/bin/python bench/bench_console.py --dispatch-ab --messages 50000 --repeat 3
    .venv/bin/python bench/bench_console.py --outcome-ab --messages 100000

Pages: the big run is planned by the real plan_run, then 40 % of it marked sent (spread over
150 minutes) and 5 % failed with one UPDATE each; each page is fetched in process through
Django's test client as a signed-in superuser (the whole admin view and template, no network),
`--calls` times, median and p95. The big UPDATE is also timed with the sent-per-minute triggers
disabled (in rolled-back transactions, alternating) to show their cost on a 400,000-row write.

--outcome-ab: the same A/B on the dispatcher's two statements alone (claims of 500, outcome
writes of 50, each in its own transaction), alternating blocks: finer and less exposed to the
box's load than whole dispatch runs.

--dispatch-ab: bench/bench_dispatch.py's end-to-end dispatch (2 worker processes, the sink on
loopback), alternating rounds with the sent-per-minute triggers enabled and disabled (the
status-counter triggers stay on in both), medians of the rounds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, db, fixtures  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/console_bench"
DISPATCH_URL = "postgres://postgres@127.0.0.1:5432/console_bench_dispatch"
SINK_PORT = 18150  # this helper's port range
TRIGGERS = ("inserted", "updated", "deleted")
MARK_SENT = (
    "UPDATE api_message SET status = 'sent',"
    " sent_at = now() - make_interval(mins => (client_id %% 150)::int)"
    " WHERE id >= %s AND id < %s AND client_id %% 100 < 40"
)
MARK_FAILED = (
    "UPDATE api_message SET status = 'failed', attempts = 1,"
    " last_error = (ARRAY['HTTP 400: invalid number', 'HTTP 403: blocked', 'timeout'])"
    "[1 + client_id %% 3] WHERE id >= %s AND id < %s AND client_id %% 100 >= 95"
)


def set_sent_minute_triggers(enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    for name in TRIGGERS:
        db.execute(f"ALTER TABLE api_message {verb} TRIGGER api_message_sent_minute_{name}")


def build_fixture(messages: int, campaigns: int, ab_rounds: int) -> tuple[int, int, list[tuple]]:
    """(big campaign id, its run id, the big UPDATE's A/B timings)."""
    from api.message_ids import run_message_ids
    from api.models import Campaign
    from api.services.planning import plan_run

    fixtures.ensure_clients(messages, tag="bench")
    fixtures.ensure_clients(5, tag="bench_tiny", phone_prefix="77")
    fixtures.reset_campaigns()
    db.execute("TRUNCATE api_runsentminute")
    for _ in range(campaigns - 1):
        _, tiny = fixtures.create_campaign_and_run(tag="bench_tiny")
        plan_run(run_id=tiny.id)
    big, run = fixtures.create_campaign_and_run(tag="bench", days=3)
    Campaign.objects.filter(pk=big.pk).update(time_interval_start=None, time_interval_end=None)
    plan_run(run_id=run.id)
    Campaign.objects.filter(pk=big.pk).update(status="running")
    low, high = run_message_ids(run.id)
    timings = []
    for _ in range(ab_rounds):  # the triggers' cost on the 40 % UPDATE, rolled back
        for enabled in (True, False):
            with db.rolled_back():
                set_sent_minute_triggers(enabled)
                with common.stopwatch() as elapsed:
                    db.execute(MARK_SENT, [low, high])
            timings.append((enabled, elapsed()))
    sent = db.execute(MARK_SENT, [low, high])
    failed = db.execute(MARK_FAILED, [low, high])
    print(f"fixture: run {run.id} of {messages:,} ({sent:,} sent, {failed:,} failed)")
    db.vacuum_analyze("api_message", "api_runstatuscount", "api_runsentminute", "api_campaign")
    return big.id, run.id, timings


def page_timings(campaign_id: int, run_id: int, calls: int) -> list[tuple[str, dict]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    user, _ = get_user_model().objects.get_or_create(
        username="bench-console", defaults={"is_staff": True, "is_superuser": True}
    )
    browser = Client()
    browser.force_login(user)
    phone = db.fetchval("SELECT phone_number FROM api_client WHERE tag = 'bench' LIMIT 1")
    pages = [
        ("campaign page", f"/admin/api/campaign/{campaign_id}/change/"),
        ("activity JSON (the refresh)", f"/admin/api/campaign/{campaign_id}/activity/"),
        ("campaign list", "/admin/api/campaign/"),
        ("messages, newest first", "/admin/api/message/"),
        ("messages, page 40 (the last)", "/admin/api/message/?p=39"),
        ("messages of the big run", f"/admin/api/message/?run={run_id}"),
        ("messages, status failed", "/admin/api/message/?status__exact=failed"),
        ("messages, search a phone", f"/admin/api/message/?q={phone}"),
        ("messages, campaign + failed", f"/admin/api/message/?campaign={campaign_id}&q=failed"),
    ]
    results = []
    for label, url in pages:
        response = browser.get(url)
        assert response.status_code == 200, (url, response.status_code)
        samples = common.time_calls(lambda url=url: browser.get(url), repeat=calls, warmup=1)
        results.append((label, common.summary(samples)))
    return results


def run_pages(args) -> None:
    common.begin(
        "console pages at scale", database_url=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    )
    started = time.perf_counter()
    campaign_id, run_id, timings = build_fixture(args.messages, args.campaigns, args.update_ab)
    print(f"fixture built in {time.perf_counter() - started:.1f} s")
    with_triggers = without = None
    if timings:
        with_triggers = common.median(t for enabled, t in timings if enabled)
        without = common.median(t for enabled, t in timings if not enabled)
        print(
            f"UPDATE of {int(args.messages * 0.4):,} rows to sent: {common.secs(with_triggers)}"
            f" with the sent-per-minute triggers, {common.secs(without)} without"
            f" ({with_triggers / without - 1:+.0%}, medians of {args.update_ab})"
        )
    results = page_timings(campaign_id, run_id, args.calls)
    common.print_table(
        ["page", "median", "p95", "max"],
        [
            (label, common.ms(s["median"]), common.ms(s["p95"]), common.ms(s["max"]))
            for label, s in results
        ],
        title=f"{args.messages:,} messages, {args.campaigns} campaigns, {args.calls} calls each",
    )
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])
    common.save_results(
        "console",
        {
            "messages": args.messages,
            "campaigns": args.campaigns,
            "update_with_triggers_s": with_triggers,
            "update_without_triggers_s": without,
            "pages": dict(results),
        },
    )


def run_dispatch_ab(args) -> None:
    from bench import bench_dispatch, processes

    common.setup_django(
        database_url=os.environ.get("BENCH_DISPATCH_DATABASE_URL", DISPATCH_URL),
        extra_env={
            "SMS_GATEWAY_URL": f"http://127.0.0.1:{SINK_PORT}",
            "SMS_GATEWAY_TOKEN": "bench-token",
            "SMS_CONCURRENCY": "100",
            "DISPATCH_BATCH_SIZE": "500",
        },
    )
    from django.db import connections

    sink = processes.start_sink(SINK_PORT)
    rates: dict[bool, list[float]] = {True: [], False: []}
    try:
        for round_number in range(1, args.repeat + 1):
            for enabled in (True, False) if round_number % 2 else (False, True):
                fixtures.prepare_messages(args.messages)
                db.execute("TRUNCATE api_runsentminute")
                set_sent_minute_triggers(enabled)
                connections.close_all()
                seconds, sent, _ = bench_dispatch.run_end_to_end(2)
                assert sent == args.messages, f"only {sent} of {args.messages} sent"
                rates[enabled].append(sent / seconds)
                print(
                    f"round {round_number}, triggers {'on ' if enabled else 'off'}:"
                    f" {sent / seconds:8.0f} msg/s",
                    flush=True,
                )
    finally:
        set_sent_minute_triggers(True)
        processes.stop(sink, timeout=10)
    on, off = common.median(rates[True]), common.median(rates[False])
    print(
        f"dispatch with the sent-per-minute triggers {on:8.0f} msg/s, without {off:8.0f}"
        f" msg/s: {on / off:.0%} (medians of {args.repeat})"
    )
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])


def run_outcome_ab(args) -> None:
    """The triggers' cost on dispatch's own statements, interleaved finely: blocks of claims
    (500 pending -> sending) and outcome writes (50 sending -> sent, sent_at now), each
    statement its own transaction as in the dispatcher, alternating triggers on and off."""
    from django.db import transaction

    common.setup_django(database_url=os.environ.get("BENCH_DISPATCH_DATABASE_URL", DISPATCH_URL))
    fixtures.prepare_messages(args.messages)
    db.execute("TRUNCATE api_runsentminute")
    run_id = db.fetchval("SELECT id FROM api_campaignrun")
    low = run_id * 2**32
    claims: dict[bool, list[float]] = {True: [], False: []}
    outcomes: dict[bool, list[float]] = {True: [], False: []}
    next_client = 1
    for block in range(args.messages // 500):
        enabled = block % 2 == 0
        set_sent_minute_triggers(enabled)
        first, next_client = low + next_client, next_client + 500
        with transaction.atomic(), common.stopwatch() as elapsed:
            db.execute(
                "UPDATE api_message SET status = 'sending' WHERE id >= %s AND id < %s",
                [first, first + 500],
            )
        claims[enabled].append(elapsed())
        for start in range(first, first + 500, 50):
            with transaction.atomic(), common.stopwatch() as elapsed:
                db.execute(
                    "UPDATE api_message SET status = 'sent', sent_at = now()"
                    " WHERE id >= %s AND id < %s AND status = 'sending'",
                    [start, start + 50],
                )
            outcomes[enabled].append(elapsed())
    set_sent_minute_triggers(True)
    for label, samples in (("claim of 500", claims), ("outcome write of 50", outcomes)):
        on, off = common.median(samples[True]), common.median(samples[False])
        print(
            f"{label:20} with the triggers {common.ms(on)}, without {common.ms(off)}:"
            f" {(on - off) * 1000:+.2f} ms ({on / off - 1:+.0%}; medians of {len(samples[True])})"
        )
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = common.arguments(__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--calls", type=int, default=15, help="per page")
    parser.add_argument("--repeat", type=int, default=3, help="--dispatch-ab rounds")
    parser.add_argument("--dispatch-ab", action="store_true")
    parser.add_argument("--outcome-ab", action="store_true")
    parser.add_argument("--update-ab", type=int, default=3, help="rounds of the UPDATE A/B")
    args = parser.parse_args()
    if args.dispatch_ab:
        run_dispatch_ab(args)
    elif args.outcome_ab:
        run_outcome_ab(args)
    else:
        run_pages(args)


if __name__ == "__main__":
    main()
