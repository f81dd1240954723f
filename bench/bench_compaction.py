"""Many small runs: what one partition per run costs queries that name no run, and compaction.

Fixture: N runs of M clients each, planned by the real `plan_run` (one partition each), all
sent and finished, plus one running run. Then, before and after
`api.services.compaction.compact_settled_runs()`:

  * the number of partitions and of locks a run-less query takes (pg_locks, inside it);
  * the median time of a run-less query: the first page of `GET /api/messages/` (its SQL,
    `ORDER BY id LIMIT 50`) and the all-campaign stats' grouped count;
  * the median time of a run-scoped query (a claim-like probe of the running run), which
    should not change.

And the compaction itself: seconds, partitions merged, rows copied.

    .venv/bin/python bench/bench_compaction.py --runs 500 --clients 200
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, db, fixtures  # noqa: I001 - the path line above must run first

TAG = "compaction"


def build_fixture(runs: int, clients: int) -> int:
    """`runs` finished runs of `clients` messages each, then one running run; its id."""
    from api.models import Campaign, CampaignRun, Message, MessageStatus, RunStatus
    from api.services.planning import plan_run

    fixtures.ensure_clients(clients, tag=TAG, phone_prefix="75")
    fixtures.reset_campaigns()
    started = time.perf_counter()
    run = None
    for number in range(runs + 1):
        _, run = fixtures.create_campaign_and_run(tag=TAG)
        plan_run(run_id=run.id)
        if number < runs:
            Message.objects.filter(run=run).update(status=MessageStatus.SENT)
            CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.FINISHED)
            Campaign.objects.filter(pk=run.campaign_id).update(status="finished")
    print(f"fixture: {runs + 1} runs x {clients} messages in {time.perf_counter() - started:.1f} s")
    return run.id


def locks_taken(sql: str) -> int:
    """Locks this backend holds right after running `sql` inside a transaction."""
    with db.rolled_back():
        db.fetchall(sql)
        return db.fetchval("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()")


def measure(running_run: int, calls: int) -> dict:
    from django.db import DatabaseError

    from api.models import Message
    from api.selectors import all_campaign_stats
    from api.services.dispatch.sweep import run_has_open_messages

    first_page = str(Message.objects.order_by("id").values_list("id", flat=True)[:50].query)

    parts = db.fetchval("SELECT count(*) FROM pg_partition_tree('api_message') WHERE isleaf")
    calls_by_name = {
        "first page of /api/messages/ (SQL)": (lambda: db.fetchall(first_page), calls),
        "all-campaign stats (selector)": (all_campaign_stats, max(3, calls // 5)),
        "running run's finish probe (run-scoped)": (
            lambda: run_has_open_messages(running_run),
            calls,
        ),
    }
    medians: dict[str, float | str] = {}
    for name, (func, repeat) in calls_by_name.items():
        try:
            medians[name] = common.median(common.time_calls(func, repeat=repeat, warmup=1)) * 1000
        except DatabaseError as exc:  # e.g. "out of shared memory": the lock table is full
            medians[name] = f"error: {str(exc).splitlines()[0]}"
    try:
        locks: int | str = locks_taken(first_page)
    except DatabaseError as exc:
        locks = f"error: {str(exc).splitlines()[0]}"
    return {"partitions": parts, "locks_first_page": locks, "medians_ms": medians}


def main(argv: list[str] | None = None) -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--runs", type=int, default=500, help="finished runs")
    parser.add_argument("--clients", type=int, default=200, help="messages per run")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)

    _, machine = common.begin(
        f"compaction benchmark: {args.runs} finished runs x {args.clients} messages"
    )
    running = build_fixture(args.runs, args.clients)
    db.vacuum_analyze("api_message", "api_campaignrun", "api_campaign")

    before = measure(running, args.calls)
    from api.services.compaction import compact_settled_runs

    with common.stopwatch() as elapsed:
        merged = compact_settled_runs()
    seconds = elapsed()
    db.vacuum_analyze("api_message")
    after = measure(running, args.calls)

    rows = [
        ["partitions", before["partitions"], after["partitions"], ""],
        [
            "locks held by the first-page query",
            before["locks_first_page"],
            after["locks_first_page"],
            "",
        ],
    ]
    for key, value in before["medians_ms"].items():
        later = after["medians_ms"][key]
        rows.append(
            [
                f"{key}, median",
                f"{value:.2f} ms",
                f"{later:.2f} ms",
                f"{value / later:.1f}x" if later else "",
            ]
        )
    common.print_table(
        ["measure", "before", "after compaction", "speed-up"],
        rows,
        title="One partition per run vs blocks of settled runs",
    )
    print(
        f"compaction: {len(merged)} block(s) {merged[:3]}{'...' if len(merged) > 3 else ''}"
        f" from {args.runs} runs ({args.runs * args.clients:,} rows) in {seconds:.2f} s"
    )
    default_locks = 64 * 100
    print(
        f"Postgres's lock table holds about max_locks_per_transaction x max_connections ="
        f" {default_locks:,} locks by default; before compaction one run-less query took"
        f" {before['locks_first_page']}."
    )
    fixtures.reset_campaigns()
    common.save_results(
        f"compaction-{args.runs}x{args.clients}",
        {
            "machine": machine,
            "before": before,
            "after": after,
            "seconds": seconds,
            "merged": merged,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
