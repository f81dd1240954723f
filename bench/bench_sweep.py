"""The due-message sweep: does it cost O(due) or O(table)?

Target (from the issue): with 1M non-due messages, an empty sweep takes < 20 ms (index and
query plan shown in the output).

Fixture (rebuilt each run): N clients tagged 'bench'; run A planned by the real plan_run for a
campaign that starts tomorrow (N pending messages, next_attempt_at in the future, 20 distinct
instants as real planning makes them); run B, still running, with `--sent` sent messages, 10
pending retries and 1,000 'sending' rows with live leases (a run near its end). On Postgres
api_message is partitioned by run (one partition each, api/partitions.py): sizes and dead rows
are summed over the partitions.

Measured, each as the median of `--calls` calls with nothing due:
  claim_due_messages(limit=500), due_messages_exist(), reap_expired_leases(),
  expire_ended_campaigns(), due_scheduled_runs(), finish_completed_runs(), and the whole
  beat task api.tasks.sweep(); then claim_due_messages(limit=500) with 500 due among the N.
Then finish_completed_runs' per-run probe (run_has_open_messages) by what the run still holds,
each in a rolled-back transaction: pending, only leases, nothing open (the run's last check).
Then the dead-row experiment: `--dead` due messages are dispatched in batches of 500 (claim +
mark sent, as the workers do) with no vacuum, claim latency is followed as dead index entries
pile up, then measured again after VACUUM (the case for per-table autovacuum settings).

    .venv/bin/python bench/bench_sweep.py --messages 1000000
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, db, fixtures  # noqa: I001 - the path line above must run first

TARGET_EMPTY_SWEEP_MS = 20.0
BATCH = 500


# --- fixture -------------------------------------------------------------------------------
def build_fixture(messages: int, sent: int) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from api.message_ids import MESSAGE_ID_RUN_STRIDE, run_message_ids
    from api.models import CampaignStatus, RunStatus
    from api.services.planning import plan_run
    from api.services.sql.partitions import create_run_partition

    fixtures.ensure_clients(max(messages, sent + 1_010), tag="bench")
    fixtures.reset_campaigns()
    # Run A: the real planner, a campaign starting in a day -> N pending, none due.
    _, run_a = fixtures.create_campaign_and_run(tag="bench", start_in_seconds=86_400, days=3)
    with common.stopwatch() as elapsed:
        planned = plan_run(run_id=run_a.id).planned
    print(f"fixture: run A planned {planned:,} pending messages in {elapsed():.1f} s")
    # plan_run planned everyone in the 'bench' tag; keep exactly `messages` of them.
    # The run is an id range (ids are run * 2**32 + client): name it, so only its partition
    # is read and the primary key walks it in client order.
    if planned > messages:
        low, high = run_message_ids(run_a.id)
        db.execute(
            "DELETE FROM api_message WHERE id >= %s AND id < %s AND id > ("
            " SELECT id FROM api_message WHERE id >= %s AND id < %s ORDER BY id"
            " OFFSET %s LIMIT 1)",
            [low, high, low, high, messages - 1],
        )
    # Run B: running, mostly sent; 10 pending retries and 1,000 live leases at the end.
    _, run_b = fixtures.create_campaign_and_run(
        tag="bench", campaign_status=CampaignStatus.RUNNING, run_status=RunStatus.RUNNING
    )
    run_b.planned_at = timezone.now()
    run_b.save(update_fields=["planned_at"])
    # Its own partition, loaded bare then indexed in bulk and attached, as planning does.
    load = (
        "INSERT INTO {partition} (id, run_id, client_id, status, planned_send_at,"
        " next_attempt_at, attempts, last_error, lease_expires_at, claim_token, sent_at,"
        " created_at)"
        f" SELECT %s * {MESSAGE_ID_RUN_STRIDE} + c.id, %s, c.id,"
        "  CASE WHEN c.rn <= %s THEN 'sent' WHEN c.rn <= %s + 10 THEN 'pending'"
        "  ELSE 'sending' END,"
        "  now() - interval '1 hour',"
        "  CASE WHEN c.rn <= %s THEN now() - interval '1 hour'"
        "  ELSE now() + interval '1 hour' END,"
        "  1, '',"
        "  CASE WHEN c.rn > %s + 10 THEN now() + interval '1 hour' END,"
        "  CASE WHEN c.rn > %s + 10 THEN 42 END,"
        "  CASE WHEN c.rn <= %s THEN now() - interval '30 minutes' END,"
        "  now() - interval '1 hour'"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM api_client"
        "       WHERE tag = 'bench' ORDER BY id LIMIT %s) AS c",
        [run_b.id, run_b.id, sent, sent, sent, sent, sent, sent, sent + 1_010],
    )
    with transaction.atomic():
        create_run_partition(run_b.id, load=load)
    flush_stats()
    db.vacuum_analyze("api_message", "api_campaignrun", "api_campaign")
    counts = dict(db.fetchall("SELECT status, count(*) FROM api_message GROUP BY status"))
    print(f"fixture: api_message by status {counts}")
    return {"run_a": run_a.id, "run_b": run_b.id, "counts": counts}


# --- reporting helpers ---------------------------------------------------------------------
def message_indexes() -> list[list[str]]:
    """The parent's (partitioned) indexes, each sized as the sum of its partitions' indexes."""
    sizes = dict(
        db.fetchall(
            "SELECT c.relname, (SELECT coalesce(sum(pg_relation_size(t.relid)), 0)"
            "  FROM pg_partition_tree(i.indexrelid) AS t WHERE t.isleaf)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'api_message'::regclass"
        )
    )
    return [
        [
            index["name"],
            f"{int(sizes.get(index['name'], index['bytes'])) / 1e6:.1f} MB",
            index["definition"].split(" USING ", 1)[-1],
            index["covered_by"] or "",
        ]
        for index in db.table_indexes("api_message")
    ]


def table_state() -> str:
    """Heap, index, live and dead figures summed over api_message's partitions (the
    partitioned parent has no storage and no row in pg_stat_user_tables)."""
    flush_stats()
    row = db.fetchall(
        "SELECT count(*), pg_size_pretty(coalesce(sum(pg_relation_size(t.relid)), 0)),"
        " pg_size_pretty(coalesce(sum(pg_indexes_size(t.relid)), 0)),"
        " coalesce(sum(s.n_live_tup), 0), coalesce(sum(s.n_dead_tup), 0)"
        " FROM pg_partition_tree('api_message') AS t"
        " LEFT JOIN pg_stat_user_tables AS s ON s.relid = t.relid WHERE t.isleaf"
    )[0]
    return (
        f"{row[0]} partitions, heap {row[1]}, indexes {row[2]},"
        f" live ~{int(row[3]):,}, dead ~{int(row[4]):,}"
    )


def flush_stats() -> None:
    """This session's row counts reach pg_stat_user_tables at most once a second: push them
    out now (Postgres 15+), so figures read next are current, and a VACUUM's live count is not
    later inflated by inserts flushed after it."""
    if int(db.fetchval("SHOW server_version_num")) >= 150000:
        db.execute("SELECT pg_stat_force_next_flush()")


def partition_options() -> str:
    """The partitions' storage parameters (a partitioned parent cannot hold any)."""
    rows = db.fetchall(
        "SELECT DISTINCT array_to_string(c.reloptions, ', ')"
        " FROM pg_partition_tree('api_message') AS t JOIN pg_class c ON c.oid = t.relid"
        " WHERE t.isleaf"
    )
    return "; ".join(options or "none" for (options,) in rows) or "no partitions"


def running_ranges() -> tuple[list[int], str]:
    """The running runs (those claim_due_messages reads) and their id ranges as SQL."""
    from api.message_ids import run_ranges_sql
    from api.services.dispatch.claims import sending_run_ids

    run_ids = sending_run_ids()
    return run_ids, run_ranges_sql(run_ids) if run_ids else "FALSE"


def claim_select_sql() -> tuple[str, list]:
    """The claim's inner SELECT with the parameters claim_due_messages would bind."""
    from django.utils import timezone

    from api.models import MessageStatus

    _, ranges = running_ranges()
    sql = (
        f"SELECT id FROM api_message WHERE status = %s AND next_attempt_at <= %s AND {ranges}"
        " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    return sql, [MessageStatus.PENDING, timezone.now(), BATCH]


def explain(sql: str, params) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back."""
    with db.rolled_back():
        return [row[0] for row in db.fetchall("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]


def claim_full_sql_plan() -> list[str]:
    """EXPLAIN ANALYZE of the real claim statement (claims.claim_statement over the running
    runs' id ranges, as claim_due_messages builds it), rolled back."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from api.services.dispatch.claims import claim_statement

    now = timezone.now()
    run_ids, _ = running_ranges()
    if not run_ids:
        return ["(no running run: claim_due_messages returns before any SQL)"]
    sql, params = claim_statement(
        run_ids,
        now=now,
        lease_until=now + timedelta(seconds=300),
        token=secrets.randbits(62),
        limit=BATCH,
    )
    return explain(sql, params)


def print_plan(title: str, lines: list[str]) -> None:
    print(f"\n{title}")
    for line in lines:
        print("  " + line)


# --- measurements --------------------------------------------------------------------------
def sweep_parts(calls: int) -> dict[str, list[float]]:
    from django.utils import timezone

    from api import tasks
    from api.services import dispatch, planning
    from api.services.campaigns import planning_lead

    def claim():
        _, claimed = dispatch.claim_due_messages(limit=BATCH)
        if claimed:
            raise SystemExit(f"claimed {len(claimed)} messages from a table with none due")

    parts = {
        "claim_due_messages(limit=500)": claim,
        "due_messages_exist()": dispatch.due_messages_exist,
        "reap_expired_leases()": dispatch.reap_expired_leases,
        "expire_ended_campaigns()": dispatch.expire_ended_campaigns,
        "due_scheduled_runs()": lambda: planning.due_scheduled_runs(
            now=timezone.now(), lead=planning_lead()
        ),
        "finish_completed_runs()": dispatch.finish_completed_runs,
        "api.tasks.sweep() (whole beat task)": tasks.sweep,
        UNPRUNED_DUE_CHECK: due_exists_unpruned,
    }
    return {name: common.time_calls(func, repeat=calls, warmup=2) for name, func in parts.items()}


UNPRUNED_DUE_CHECK = "due check without run ranges (every partition)"


def due_exists_unpruned() -> bool:
    """due_messages_exist as it would be without the running runs' id ranges: the same ORDER BY
    on the due index, but every partition's due index is merged (paused, cancelled and
    not-yet-started runs included). Shows what naming the ranges saves."""
    from django.utils import timezone

    from api.models import Message, MessageStatus

    return bool(
        Message.objects.filter(status=MessageStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:1]
    )


def finish_checks(
    run_a: int, run_b: int, calls: int
) -> tuple[dict[str, list[float]], list[list[str]]]:
    """run_has_open_messages (finish_completed_runs' probe, once per running run) by what the
    run still holds, each case set up in a transaction that is rolled back. Returns the timings
    and the plan of the nothing-open case: there the pending and sending probes find nothing
    and the paused probe (no index) reads the whole partition, once, on the run's last sweep."""
    from api.message_ids import run_message_ids
    from api.services.dispatch.sweep import run_has_open_messages

    low, high = run_message_ids(run_b)
    to_sent = (
        "UPDATE api_message SET status = 'sent', sent_at = now(), lease_expires_at = NULL,"
        " claim_token = NULL WHERE id >= %s AND id < %s AND status = ANY(%s)"
    )
    cases = (
        ("run A: all pending (the due probe hits)", run_a, [], True),
        ("run B: 10 pending + 1,000 sending", run_b, [], True),
        ("run B: only its 1,000 leases (the lease probe hits)", run_b, ["pending"], True),
        ("run B: nothing open (all three probes miss)", run_b, ["pending", "sending"], False),
    )
    timings: dict[str, list[float]] = {}
    plans: list[list[str]] = []
    for label, run_id, statuses, expected in cases:
        with db.rolled_back():
            if statuses:
                db.execute(to_sent, [low, high, statuses])
            if run_has_open_messages(run_id) is not expected:
                raise SystemExit(f"run_has_open_messages({label}) is not {expected}")
            timings[label] = common.time_calls(
                lambda run_id=run_id: run_has_open_messages(run_id), repeat=calls, warmup=2
            )
            if not expected:
                plans = db.explain_captured(lambda: run_has_open_messages(run_b))
    return timings, plans


def make_due(run_id: int, count: int) -> list[int]:
    """Make `count` of the run's pending messages due (a minute ago); returns their ids."""
    from api.message_ids import run_message_ids

    low, high = run_message_ids(run_id)
    rows = db.fetchall(
        "UPDATE api_message SET next_attempt_at = now() - interval '1 minute'"
        " WHERE id >= %s AND id < %s AND id IN (SELECT id FROM api_message"
        " WHERE id >= %s AND id < %s AND status = 'pending' ORDER BY id LIMIT %s) RETURNING id",
        [low, high, low, high, count],
    )
    return [row[0] for row in rows]


def claim_with_due(run_id: int, calls: int) -> tuple[list[float], list[str]]:
    """Median claim of 500 when 500 are due among N; the 500 are reset and the table vacuumed
    before each call, so every call sees the same clean table."""
    from api.services import dispatch

    ids = make_due(run_id, BATCH)
    db.vacuum_analyze("api_message")
    plan = claim_full_sql_plan()

    def reset():
        db.execute(
            "UPDATE api_message SET status = 'pending', next_attempt_at = now() - interval"
            " '1 minute', lease_expires_at = NULL, claim_token = NULL, attempts = 0"
            " WHERE id = ANY(%s)",
            [ids],
        )
        db.execute("VACUUM api_message")

    def claim():
        _, claimed = dispatch.claim_due_messages(limit=BATCH)
        if len(claimed) != BATCH:
            raise SystemExit(f"claimed {len(claimed)} of {BATCH} due messages")

    samples = common.time_calls(claim, repeat=calls, warmup=1, before=reset)
    # Leave them non-due again.
    db.execute(
        "UPDATE api_message SET status = 'pending', next_attempt_at = now() + interval '1 day',"
        " lease_expires_at = NULL, claim_token = NULL, attempts = 0 WHERE id = ANY(%s)",
        [ids],
    )
    db.vacuum_analyze("api_message")
    return samples, plan


def dead_rows(run_id: int, dead: int, calls: int, *, hold_snapshot: bool) -> dict:
    """Dispatch `dead` due messages in batches (claim + mark sent, as a worker does) with no
    vacuum in between, following the claim latency; then the empty-claim latency with the
    dead rows, and after VACUUM.

    hold_snapshot: another session keeps a REPEATABLE READ snapshot open meanwhile (a long
    report, a long plan_run, an idle-in-transaction client): dead rows then stay visible to
    someone, index entries cannot be marked dead, and every claim re-reads them all.
    """
    import psycopg

    from api.services import dispatch

    ids = make_due(run_id, dead)
    db.vacuum_analyze("api_message")
    holder = None
    if hold_snapshot:
        holder = psycopg.connect(
            common.bench_database_url().replace("postgres://", "postgresql://", 1)
        )
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM api_campaign").fetchone()
    batches: list[tuple[int, float]] = []
    done = 0
    try:
        while True:
            with common.stopwatch() as elapsed:
                _, claimed = dispatch.claim_due_messages(limit=BATCH)
            if not claimed:
                break
            batches.append((done, elapsed()))
            # What record_transitions does for a sent batch: one UPDATE by primary key.
            db.execute(
                "UPDATE api_message SET status = 'sent', sent_at = now(), lease_expires_at = NULL,"
                " claim_token = NULL, last_error = '' WHERE id = ANY(%s) AND status = 'sending'",
                [[m.id for m in claimed]],
            )
            done += len(claimed)

        def empty_claim():
            _, claimed = dispatch.claim_due_messages(limit=BATCH)
            assert not claimed

        first_after = common.time_calls(empty_claim, repeat=1)[0]
        dead_state = table_state()
        empty_dead = common.time_calls(empty_claim, repeat=calls)
        plan_dead = explain(*claim_select_sql())
    finally:
        if holder is not None:
            holder.close()
    empty_released = common.time_calls(empty_claim, repeat=calls, warmup=1)
    with common.stopwatch() as vacuum_elapsed:
        db.execute("VACUUM api_message")
    empty_vacuumed = common.time_calls(empty_claim, repeat=calls, warmup=1)
    plan_vacuumed = explain(*claim_select_sql())
    # Put the messages back as non-due pending rows for what follows.
    db.execute(
        "UPDATE api_message SET status = 'pending', next_attempt_at = now() + interval '1 day',"
        " sent_at = NULL, attempts = 0 WHERE id = ANY(%s)",
        [ids],
    )
    db.vacuum_analyze("api_message")
    return {
        "hold_snapshot": hold_snapshot,
        "dead": done,
        "batches": batches,
        "first_empty_claim_after": first_after,
        "empty_claim_dead": empty_dead,
        "empty_claim_released": empty_released,
        "empty_claim_vacuumed": empty_vacuumed,
        "vacuum_seconds": vacuum_elapsed(),
        "table_with_dead": dead_state,
        "plan_dead": plan_dead,
        "plan_vacuumed": plan_vacuumed,
    }


def batch_latency_at(batches: list[tuple[int, float]], dead_before: int) -> float | None:
    """Median latency of the claims made when about `dead_before` rows were already dead."""
    window = [t for done, t in batches if dead_before <= done < dead_before + 5 * BATCH]
    return common.median(window) if window else None


def main(argv: list[str] | None = None) -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000, help="non-due pending rows")
    parser.add_argument("--sent", type=int, default=200_000, help="sent rows of a live run")
    parser.add_argument("--calls", type=int, default=50, help="calls per median")
    parser.add_argument("--due-calls", type=int, default=20, help="claims with 500 due")
    parser.add_argument("--dead", type=int, default=200_000, help="rows for the dead-row test")
    parser.add_argument("--no-dead", action="store_true", help="skip the dead-row test")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)

    _, machine = common.begin(f"sweep benchmark: {args.messages:,} non-due pending messages")
    fixture = build_fixture(args.messages, args.sent)
    print(f"api_message: {table_state()}")
    print(
        f"api_message partitions' storage options: {partition_options()};"
        f" server autovacuum={db.fetchval('SHOW autovacuum')}"
        f" (naptime {db.fetchval('SHOW autovacuum_naptime')})"
    )
    common.print_table(
        ["index", "size", "definition", "redundant (covered by)"],
        message_indexes(),
        title="Indexes on api_message",
    )

    parts = sweep_parts(args.calls)
    common.print_table(
        ["sweep part (nothing due)", "median", "p95", "max"],
        [
            [
                name,
                common.ms(common.median(s)),
                common.ms(common.percentile(s, 95)),
                common.ms(max(s)),
            ]
            for name, s in parts.items()
        ],
        title=f"Empty sweep with {args.messages:,} non-due + {args.sent:,} sent rows"
        f" (median of {args.calls})",
    )
    print_plan(
        "EXPLAIN (ANALYZE, BUFFERS) of the claim's inner SELECT, nothing due:",
        explain(*claim_select_sql()),
    )
    print_plan("EXPLAIN ANALYZE of the whole claim UPDATE, nothing due:", claim_full_sql_plan())
    from api import tasks

    for name, func in (
        ("api.tasks.sweep() (each statement on api_message)", tasks.sweep),
        (UNPRUNED_DUE_CHECK, due_exists_unpruned),
    ):
        for lines in db.explain_captured(func):
            if "api_message" in lines[0]:
                sql = lines[0] if len(lines[0]) <= 400 else lines[0][:400] + " ..."
                print_plan(f"EXPLAIN (ANALYZE, BUFFERS) in {name}:\n  {sql}", lines[1:])

    due_samples, due_plan = claim_with_due(fixture["run_a"], args.due_calls)
    print(
        f"\nclaim_due_messages(limit=500) with 500 due among {args.messages:,}:"
        f" median {common.ms(common.median(due_samples))},"
        f" p95 {common.ms(common.percentile(due_samples, 95))} (n={len(due_samples)})"
    )
    print_plan("EXPLAIN ANALYZE of the claim UPDATE with 500 due:", due_plan)

    checks, finish_plans = finish_checks(fixture["run_a"], fixture["run_b"], args.calls)
    common.print_table(
        ["run_has_open_messages(run), per running run", "median", "p95"],
        [
            [label, common.ms(common.median(s)), common.ms(common.percentile(s, 95))]
            for label, s in checks.items()
        ],
        title="finish_completed_runs' probe by what the run holds (rolled back; median of"
        f" {args.calls})",
    )
    for lines in finish_plans:
        print_plan("EXPLAIN (ANALYZE, BUFFERS) run_has_open_messages, nothing open:", lines[1:])

    dead = []
    if not args.no_dead:
        for hold in (False, True):
            what = "with an old snapshot held open" if hold else "no other transaction"
            common.header(
                f"dead rows: {args.dead:,} messages dispatched in batches of {BATCH}, {what}"
            )
            result = dead_rows(fixture["run_a"], args.dead, args.calls, hold_snapshot=hold)
            dead.append(result)
            rows = []
            last = max(result["dead"] - 5 * BATCH, 0)
            marks = [m for m in (0, 10_000, 25_000, 50_000, 100_000, 200_000) if m < last]
            for mark in [*marks, last]:
                latency = batch_latency_at(result["batches"], mark)
                if latency is not None:
                    rows.append([f"{mark:,}", common.ms(latency)])
            common.print_table(
                ["rows already dispatched (dead in due_idx)", "claim of 500, median of 5"],
                rows,
                title=f"Claim latency while dead rows pile up (no vacuum, {what})",
            )
            clean = common.median(result["empty_claim_vacuumed"])
            dirty = common.median(result["empty_claim_dead"])
            released = common.median(result["empty_claim_released"])
            print(f"table after dispatching: {result['table_with_dead']}")
            first = result["first_empty_claim_after"]
            print(f"first empty claim after dispatching: {common.ms(first)}")
            print(f"empty claim, {result['dead']:,} dead rows: median {common.ms(dirty)}")
            if hold:
                print(
                    f"empty claim after the old snapshot is released: median {common.ms(released)}"
                )
            print(
                f"empty claim after VACUUM ({result['vacuum_seconds']:.1f} s):"
                f" median {common.ms(clean)}  -> dead/vacuumed {dirty / clean:.1f}x"
            )
            print_plan(
                "EXPLAIN (ANALYZE, BUFFERS) empty claim SELECT, dead rows:", result["plan_dead"]
            )
            print_plan("... and after VACUUM:", result["plan_vacuumed"])

    sweep_ms = common.median(parts["api.tasks.sweep() (whole beat task)"]) * 1000
    claim_ms = common.median(parts["claim_due_messages(limit=500)"]) * 1000
    at_1m = args.messages >= 1_000_000
    scale = "" if at_1m else f" (at {args.messages:,}, target is for 1M)"
    targets = [
        [
            f"empty sweep (whole task) < {TARGET_EMPTY_SWEEP_MS:.0f} ms",
            f"{sweep_ms:.2f} ms{scale}",
            common.verdict(sweep_ms < TARGET_EMPTY_SWEEP_MS),
        ],
        [
            f"empty claim < {TARGET_EMPTY_SWEEP_MS:.0f} ms",
            f"{claim_ms:.2f} ms{scale}",
            common.verdict(claim_ms < TARGET_EMPTY_SWEEP_MS),
        ],
    ]
    common.print_targets(targets, measured="measured (median)")
    common.save_results(
        f"sweep-{args.messages}",
        {
            "machine": machine,
            "fixture": fixture,
            "parts": parts,
            "claim_with_500_due": due_samples,
            "dead_rows": dead,
            "finish_checks": checks,
            "targets": targets,
        },
    )
    return common.exit_code(targets, args.strict)


if __name__ == "__main__":
    sys.exit(main())
