"""The due-message sweep: does it cost O(due) or O(table)?

Target (from the issue): with 1M non-due messages, an empty sweep takes < 20 ms (index and
query plan shown in the output).

Fixture (rebuilt each run): N clients tagged 'bench'; run A planned by the real plan_run for a
campaign that starts tomorrow (N pending messages, next_attempt_at in the future, 20 distinct
instants as real planning makes them); run B, still running, with `--sent` sent messages, 10
pending retries and 1,000 'sending' rows with live leases (a run near its end).

Measured, each as the median of `--calls` calls with nothing due:
  claim_due_messages(limit=500), due_messages_exist(), reap_expired_leases(),
  expire_ended_campaigns(), due_scheduled_runs(), finish_completed_runs(), and the whole
  beat task api.tasks.sweep(); then claim_due_messages(limit=500) with 500 due among the N.
Then the dead-row experiment: `--dead` due messages are dispatched in batches of 500 (claim +
mark sent, as the workers do) with no vacuum, claim latency is followed as dead index entries
pile up, then measured again after VACUUM (the case for per-table autovacuum settings).

    .venv/bin/python bench/bench_sweep.py --messages 1000000
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: I001 - the path line above must run first

TARGET_EMPTY_SWEEP_MS = 20.0
BATCH = 500


# --- fixture -------------------------------------------------------------------------------
def build_fixture(messages: int, sent: int) -> dict:
    from django.utils import timezone

    from api.models import CampaignStatus, RunStatus
    from api.services.planning import plan_run

    common.ensure_clients(max(messages, sent + 1_010), tag="bench")
    common.reset_campaigns()
    # Run A: the real planner, a campaign starting in a day -> N pending, none due.
    _, run_a = common.create_campaign_and_run(tag="bench", start_in_seconds=86_400, days=3)
    with common.stopwatch() as elapsed:
        planned = plan_run(run_id=run_a.id).planned
    print(f"fixture: run A planned {planned:,} pending messages in {elapsed():.1f} s")
    # plan_run planned everyone in the 'bench' tag; keep exactly `messages` of them.
    if planned > messages:
        common.execute(
            "DELETE FROM api_message WHERE run_id = %s AND client_id > ("
            " SELECT client_id FROM api_message WHERE run_id = %s ORDER BY client_id"
            " OFFSET %s LIMIT 1)",
            [run_a.id, run_a.id, messages - 1],
        )
    # Run B: running, mostly sent; 10 pending retries and 1,000 live leases at the end.
    _, run_b = common.create_campaign_and_run(
        tag="bench", campaign_status=CampaignStatus.RUNNING, run_status=RunStatus.RUNNING
    )
    run_b.planned_at = timezone.now()
    run_b.save(update_fields=["planned_at"])
    common.execute(
        "INSERT INTO api_message (run_id, client_id, status, planned_send_at, next_attempt_at,"
        " attempts, last_error, lease_expires_at, claim_token, sent_at, created_at)"
        " SELECT %s, c.id,"
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
        [run_b.id, sent, sent, sent, sent, sent, sent, sent + 1_010],
    )
    common.vacuum_analyze("api_message", "api_campaignrun", "api_campaign")
    counts = dict(common.fetchall("SELECT status, count(*) FROM api_message GROUP BY status"))
    print(f"fixture: api_message by status {counts}")
    return {"run_a": run_a.id, "run_b": run_b.id, "counts": counts}


# --- reporting helpers ---------------------------------------------------------------------
def message_indexes() -> list[list[str]]:
    return [
        [
            index["name"],
            f"{index['bytes'] / 1e6:.1f} MB",
            index["definition"].split(" USING ", 1)[-1],
            index["covered_by"] or "",
        ]
        for index in common.table_indexes("api_message")
    ]


def table_state() -> str:
    row = common.fetchall(
        "SELECT pg_size_pretty(pg_relation_size('api_message')),"
        " pg_size_pretty(pg_indexes_size('api_message')), n_live_tup, n_dead_tup"
        " FROM pg_stat_user_tables WHERE relname = 'api_message'"
    )[0]
    return f"heap {row[0]}, indexes {row[1]}, live ~{row[2]:,}, dead ~{row[3]:,}"


def claim_select_sql() -> tuple[str, list]:
    """The claim's inner SELECT with the parameters claim_due_messages would bind."""
    from django.utils import timezone

    from api.models import MessageStatus

    sql = (
        "SELECT id FROM api_message WHERE status = %s AND next_attempt_at <= %s"
        " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    return sql, [MessageStatus.PENDING, timezone.now(), BATCH]


def explain(sql: str, params: list) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            return [row[0] for row in cursor.fetchall()]
        finally:
            cursor.execute("ROLLBACK")


def claim_full_sql_plan() -> list[str]:
    """EXPLAIN ANALYZE of the real claim statement (dispatch._claim_sql), rolled back."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from api.models import MessageStatus
    from api.services.dispatch import _claim_sql

    now = timezone.now()
    params = [
        MessageStatus.SENDING,
        now + timedelta(seconds=300),
        secrets.randbits(62),
        MessageStatus.PENDING,
        now,
        BATCH,
    ]
    return explain(_claim_sql(), params)


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
        "proposed due_messages_exist (ORDER BY next_attempt_at LIMIT 1)": due_exists_ordered,
    }
    return {name: common.time_calls(func, repeat=calls, warmup=2) for name, func in parts.items()}


def due_exists_ordered() -> bool:
    """Proposed due_messages_exist: ORDER BY next_attempt_at LIMIT 1 makes the planner walk
    message_due_idx instead of betting on a seq scan with LIMIT 1."""
    from django.utils import timezone

    from api.models import Message, MessageStatus

    return bool(
        Message.objects.filter(status=MessageStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:1]
    )


OPEN_RUN_INDEX = (
    "CREATE INDEX bench_open_run_idx ON api_message (run_id)"
    " WHERE status IN ('pending', 'sending', 'paused')"
)


def what_if(
    run_id: int, calls: int, ddl: list[str]
) -> tuple[dict[str, list[float]], list[list[str]]]:
    """Apply `ddl` in a transaction, time the O(table)-suspect sweep parts and capture the
    plan of finish_completed_runs, then roll everything back."""
    from django.db import transaction

    from api.services import dispatch

    class _Rollback(Exception):
        pass

    parts = {
        "finish_completed_runs()": dispatch.finish_completed_runs,
        "claim_due_messages(limit=500), none due": lambda: dispatch.claim_due_messages(limit=BATCH),
    }
    timings: dict[str, list[float]] = {}
    plans: list[list[str]] = []
    try:
        with transaction.atomic():
            for statement in ddl:
                common.execute(statement)
            common.execute("ANALYZE api_message")
            for name, func in parts.items():
                timings[name] = common.time_calls(func, repeat=calls, warmup=2)
            timings["claim_due_messages(limit=500), 500 due"] = claims_in_savepoints(
                run_id, min(calls, 20)
            )
            plans = common.explain_captured(dispatch.finish_completed_runs)
            raise _Rollback
    except _Rollback:
        pass
    return timings, plans


def claims_in_savepoints(run_id: int, calls: int) -> list[float]:
    """Claim 500 due messages `calls` times, each inside a savepoint that is rolled back (so
    it can run inside a what-if transaction). Compare only with other what-if figures."""
    from django.db import transaction

    from api.services import dispatch

    samples = []
    for _ in range(calls + 1):
        with transaction.atomic():
            make_due(run_id, BATCH)
            with common.stopwatch() as elapsed:
                _, claimed = dispatch.claim_due_messages(limit=BATCH)
            if len(claimed) != BATCH:
                raise SystemExit(f"claimed {len(claimed)} of {BATCH} due messages")
            samples.append(elapsed())
            transaction.set_rollback(True)
    return samples[1:]


def make_due(run_id: int, count: int) -> list[int]:
    """Make `count` of the run's pending messages due (a minute ago); returns their ids."""
    rows = common.fetchall(
        "UPDATE api_message SET next_attempt_at = now() - interval '1 minute'"
        " WHERE id IN (SELECT id FROM api_message WHERE run_id = %s AND status = 'pending'"
        " ORDER BY id LIMIT %s) RETURNING id",
        [run_id, count],
    )
    return [row[0] for row in rows]


def claim_with_due(run_id: int, calls: int) -> tuple[list[float], list[str]]:
    """Median claim of 500 when 500 are due among N; the 500 are reset and the table vacuumed
    before each call, so every call sees the same clean table."""
    from api.services import dispatch

    ids = make_due(run_id, BATCH)
    common.vacuum_analyze("api_message")
    plan = claim_full_sql_plan()

    def reset():
        common.execute(
            "UPDATE api_message SET status = 'pending', next_attempt_at = now() - interval"
            " '1 minute', lease_expires_at = NULL, claim_token = NULL, attempts = 0"
            " WHERE id = ANY(%s)",
            [ids],
        )
        common.execute("VACUUM api_message")

    def claim():
        _, claimed = dispatch.claim_due_messages(limit=BATCH)
        if len(claimed) != BATCH:
            raise SystemExit(f"claimed {len(claimed)} of {BATCH} due messages")

    samples = common.time_calls(claim, repeat=calls, warmup=1, before=reset)
    # Leave them non-due again.
    common.execute(
        "UPDATE api_message SET status = 'pending', next_attempt_at = now() + interval '1 day',"
        " lease_expires_at = NULL, claim_token = NULL, attempts = 0 WHERE id = ANY(%s)",
        [ids],
    )
    common.vacuum_analyze("api_message")
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
    common.vacuum_analyze("api_message")
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
            common.execute(
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
        common.execute("VACUUM api_message")
    empty_vacuumed = common.time_calls(empty_claim, repeat=calls, warmup=1)
    plan_vacuumed = explain(*claim_select_sql())
    # Put the messages back as non-due pending rows for what follows.
    common.execute(
        "UPDATE api_message SET status = 'pending', next_attempt_at = now() + interval '1 day',"
        " sent_at = NULL, attempts = 0 WHERE id = ANY(%s)",
        [ids],
    )
    common.vacuum_analyze("api_message")
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="non-due pending rows")
    parser.add_argument("--sent", type=int, default=200_000, help="sent rows of a live run")
    parser.add_argument("--calls", type=int, default=50, help="calls per median")
    parser.add_argument("--due-calls", type=int, default=20, help="claims with 500 due")
    parser.add_argument("--dead", type=int, default=200_000, help="rows for the dead-row test")
    parser.add_argument("--no-dead", action="store_true", help="skip the dead-row test")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)

    url = common.setup_django()
    common.header(f"sweep benchmark: {args.messages:,} non-due pending messages")
    machine = common.print_machine({"database": common.redact(url), "git": common.git_revision()})
    fixture = build_fixture(args.messages, args.sent)
    print(f"api_message: {table_state()}")
    options = common.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'api_message'")
    print(
        f"api_message storage options: {options or 'none'};"
        f" server autovacuum={common.fetchval('SHOW autovacuum')}"
        f" (naptime {common.fetchval('SHOW autovacuum_naptime')})"
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
    from api.services import dispatch

    for name, func in (
        ("finish_completed_runs()", dispatch.finish_completed_runs),
        ("due_messages_exist()", dispatch.due_messages_exist),
        ("proposed due_messages_exist (ORDER BY next_attempt_at LIMIT 1)", due_exists_ordered),
    ):
        for lines in common.explain_captured(func):
            print_plan(f"EXPLAIN (ANALYZE, BUFFERS) of {name}:", lines[1:])

    due_samples, due_plan = claim_with_due(fixture["run_a"], args.due_calls)
    print(
        f"\nclaim_due_messages(limit=500) with 500 due among {args.messages:,}:"
        f" median {common.ms(common.median(due_samples))},"
        f" p95 {common.ms(common.percentile(due_samples, 95))} (n={len(due_samples)})"
    )
    print_plan("EXPLAIN ANALYZE of the claim UPDATE with 500 due:", due_plan)

    redundant = [i["name"] for i in common.table_indexes("api_message") if i["covered_by"]]
    drops = [f"DROP INDEX {name}" for name in redundant]
    scenarios = {"as is": [], "open-run partial index": [OPEN_RUN_INDEX]}
    if drops:
        scenarios["redundant indexes dropped"] = drops
        scenarios["redundant dropped + open-run partial index"] = [*drops, OPEN_RUN_INDEX]
    what_ifs = {}
    for label, ddl in scenarios.items():
        if label != "as is" and not ddl:
            continue
        timings, plans = what_if(fixture["run_a"], args.calls, ddl)
        what_ifs[label] = {"ddl": ddl, "timings": timings}
        print(f"\nwhat if ({label}; rolled back): " + ("; ".join(ddl) or "no change"))
        for name, samples in timings.items():
            print(f"  {name}: median {common.ms(common.median(samples))}")
        if ddl:
            for lines in plans:
                print_plan("  EXPLAIN finish_completed_runs():", lines[1:])
    common.print_table(
        ["what if (in a rolled-back transaction)", *next(iter(what_ifs.values()))["timings"]],
        [
            [label, *(common.ms(common.median(v)) for v in data["timings"].values())]
            for label, data in what_ifs.items()
        ],
        title="Index proposals, medians (finish_completed_runs; claims none / 500 due)",
    )

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
    common.print_table(["target", "measured (median)", "verdict"], targets, title="Targets")
    common.save_results(
        f"sweep-{args.messages}",
        {
            "machine": machine,
            "fixture": fixture,
            "parts": parts,
            "claim_with_500_due": due_samples,
            "dead_rows": dead,
            "what_if": what_ifs,
            "targets": targets,
        },
    )
    failed = any(row[2] == "FAIL" for row in targets)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
