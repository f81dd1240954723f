"""Planning throughput: how fast `plan_run` turns an audience into Message rows.

Targets (from the issue):
  * >= 200,000 messages/s: a 1,000,000-client audience over 20 IANA zones planned in <= 5 s;
  * memory flat in audience size: peak RSS growth of the planning process < 50 MB at 1M;
  * >= 50 % of a bare `INSERT ... SELECT` of the same rows (same ids, same values) into a
    table with no index, no constraint and no primary key, measured in the same run
    (ratio = bare seconds / plan_run seconds).

Procedure: N clients tagged 'bench' over 20 zones (set-based fixture, reused when present); per
repetition a fresh campaign (09:00-21:00 daily window, start now, end in 3 days) and a
scheduled run; the message partitions are dropped, the bare table TRUNCATEd, both VACUUM
ANALYZEd and a CHECKPOINT taken before each timed call; plan_run and the bare INSERT alternate
which goes first. WAL volume (all sessions) and checkpoints during each are printed too.

plan_run on Postgres loads the run into a new partition with no index, then builds its primary
key and due index in bulk and attaches it (api/services/sql/partitions.py). The breakdown times each
statement plan_run sends (captured with an execute wrapper), then the alternatives on a scratch
table: the same rows with today's indexes maintained row by row (what plain tables do), with
ON CONFLICT, with ids from a sequence, and the index set of the design before partitioning.
`--compare ROUNDS` runs only an interleaved A/B of plan_run's bulk path against the row-by-row
insert, the least noisy way to judge a change on a busy machine.

    .venv/bin/python bench/bench_planning.py --clients 1000000 --repeat 5
    .venv/bin/python bench/bench_planning.py --clients 100000
    .venv/bin/python bench/bench_planning.py --clients 1000000 --compare 5
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, db, fixtures  # noqa: I001 - the path line above must run first

BARE_TABLE = "bench_bare_message"
SCRATCH_TABLE = "bench_variant_message"
COLUMNS = (
    "id, run_id, client_id, status, planned_send_at, next_attempt_at, attempts, last_error,"
    " created_at"
)
TARGET_RATE = 200_000  # messages/s
TARGET_SECONDS_AT_1M = 5.0
TARGET_RSS_MB = 50.0
TARGET_RATIO = 0.50

# The message table's index set before it was partitioned (sequence ids; last measured with
# plan_run at 10.1 s per 1M on 2026-11-26), for the record.
OLD_DESIGN_INDEXES = (
    "ALTER TABLE {t} ADD PRIMARY KEY (id)",
    "CREATE UNIQUE INDEX {t}_run_client ON {t} (run_id, client_id)",
    "CREATE INDEX {t}_due ON {t} (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX {t}_lease ON {t} (lease_expires_at) WHERE status = 'sending'",
    "CREATE INDEX {t}_client ON {t} (client_id)",
    "CREATE INDEX {t}_open_run ON {t} (run_id) WHERE status IN ('pending', 'sending', 'paused')",
)


def create_plain_table(name: str, *, sequence: bool = False) -> None:
    """api_message's columns with no index, no constraint (not even NOT NULL) and no PK; with
    `sequence`, ids default to a sequence (as api_message's did before ids were derived)."""
    db.execute(f"DROP TABLE IF EXISTS {name}")  # noqa: S608 - constant table name
    db.execute(f"DROP SEQUENCE IF EXISTS {name}_id_seq")  # noqa: S608
    default = ""
    if sequence:
        db.execute(f"CREATE SEQUENCE {name}_id_seq")  # noqa: S608
        default = f" DEFAULT nextval('{name}_id_seq')"
    db.execute(
        f"CREATE TABLE {name} ("  # noqa: S608 - constant table name
        f" id bigint{default}, run_id bigint, client_id bigint,"
        " status varchar(16), planned_send_at timestamptz, next_attempt_at timestamptz,"
        " attempts integer, last_error text, lease_expires_at timestamptz, claim_token bigint,"
        " sent_at timestamptz, created_at timestamptz)"
    )


def insert_sql(
    run,
    times: dict[str, datetime],
    now: datetime,
    *,
    table: str,
    ids: str = "derived",
    conflict: bool = False,
):
    """The planner's INSERT ... SELECT of the run's messages aimed at `table`; (sql, params).

    ids "derived" writes run_id * 2**32 + client_id, as api.services.planning does; "sequence"
    leaves the id to the table's sequence default. conflict adds ON CONFLICT (id) DO NOTHING
    (needs a unique index on id).
    """
    from api.services.planning import message_insert_select

    select, params = message_insert_select(run, times, now)
    if ids == "derived":
        columns = COLUMNS
    else:  # the same SELECT without its first column (the derived id)
        columns = COLUMNS.removeprefix("id, ")
        select = "SELECT " + select.split(" + audience.id, ", 1)[1]
    sql = f"INSERT INTO {table} ({columns}) {select}"  # noqa: S608 - constants and %(x)s only
    if conflict:
        sql += " ON CONFLICT (id) DO NOTHING"
    return sql, params


def run_times(run, now: datetime) -> dict[str, datetime]:
    from api.selectors import client_timezones
    from api.services.planning import planned_times

    return planned_times(run.campaign, client_timezones(), now)


def fresh_tables() -> None:
    fixtures.drop_message_partitions()
    db.execute(f"TRUNCATE {BARE_TABLE}")  # noqa: S608 - constant name
    db.vacuum_analyze(BARE_TABLE)


def time_plan_run(run_id: int, expected: int) -> dict:
    """seconds, peak RSS growth (MB), WAL (MB) and checkpoints of one plan_run call."""
    from api.services.planning import plan_run

    db.checkpoint()
    with (
        db.wal_probe() as wal,
        common.peak_rss_growth() as growth,
        common.stopwatch() as elapsed,
    ):
        result = plan_run(run_id=run_id)
    if result.planned != expected:
        raise SystemExit(f"plan_run planned {result.planned} messages, expected {expected}")
    return {"seconds": elapsed(), "rss_mb": growth(), **wal()}


def time_statement(sql: str, params: list, expected: int) -> dict:
    """seconds, WAL (MB) and checkpoints of one statement, after a CHECKPOINT."""
    from django.db import connection

    db.checkpoint()
    with (
        db.wal_probe() as wal,
        common.stopwatch() as elapsed,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
        rows = cursor.rowcount
    if rows != expected:
        raise SystemExit(f"the INSERT wrote {rows} rows, expected {expected}")
    return {"seconds": elapsed(), **wal()}


def main_measurement(clients: int, repeat: int) -> dict:
    from django.utils import timezone

    plans, bares = [], []
    for index in range(repeat):
        fresh_tables()
        _, run = fixtures.create_campaign_and_run(tag="bench")
        now = timezone.now()
        bare_sql, bare_params = insert_sql(run, run_times(run, now), now, table=BARE_TABLE)
        steps = ["bare", "plan"] if index % 2 == 0 else ["plan", "bare"]
        for step in steps:
            if step == "bare":
                bares.append(time_statement(bare_sql, bare_params, clients))
            else:
                plans.append(time_plan_run(run.id, clients))
        plan, bare = plans[-1], bares[-1]
        print(
            f"  repetition {index + 1}/{repeat}: plan_run {common.secs(plan['seconds'])}"
            f" ({clients / plan['seconds']:,.0f} msg/s, WAL {plan['wal_mb']:.0f} MB,"
            f" checkpoints {plan['checkpoints']}, peak RSS growth {plan['rss_mb']:.2f} MB);"
            f" bare INSERT {common.secs(bare['seconds'])} (WAL {bare['wal_mb']:.0f} MB,"
            f" checkpoints {bare['checkpoints']}); ratio {bare['seconds'] / plan['seconds']:.2f};"
            f" loadavg {os.getloadavg()[0]:.2f}"
        )
    plan_median = common.median(p["seconds"] for p in plans)
    bare_median = common.median(b["seconds"] for b in bares)
    ratios = [b["seconds"] / p["seconds"] for p, b in zip(plans, bares, strict=True)]
    return {
        "clients": clients,
        "repeat": repeat,
        "plan_runs": plans,
        "bare_runs": bares,
        "plan_seconds": [p["seconds"] for p in plans],
        "bare_seconds": [b["seconds"] for b in bares],
        "rss_growth_mb": [p["rss_mb"] for p in plans],
        "plan_median_s": plan_median,
        "bare_median_s": bare_median,
        "plan_rate": clients / plan_median,
        "bare_rate": clients / bare_median,
        "ratio": bare_median / plan_median,
        "ratio_per_repetition": ratios,
        "rss_growth_max_mb": max(p["rss_mb"] for p in plans),
        "plan_wal_mb": common.median(p["wal_mb"] for p in plans),
        "bare_wal_mb": common.median(b["wal_mb"] for b in bares),
    }


# --- breakdown ------------------------------------------------------------------------------
def plan_run_statements(clients: int, repeat: int) -> list[dict]:
    """Each statement plan_run sends, timed (median over `repeat` plans of fresh runs)."""
    from django.db import connection

    from api.services.planning import plan_run

    per_statement: dict[int, dict] = {}
    for _ in range(repeat):
        fixtures.drop_message_partitions()
        db.vacuum_analyze("api_campaignrun", "api_campaign")
        _, run = fixtures.create_campaign_and_run(tag="bench")
        db.checkpoint()
        timings: list[tuple[str, float]] = []

        def timer(execute, sql, params, many, context, timings=timings):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append((sql, time.perf_counter() - started))

        started = time.perf_counter()
        with connection.execute_wrapper(timer):
            planned = plan_run(run_id=run.id).planned
        total = time.perf_counter() - started
        if planned != clients:
            raise SystemExit(f"plan_run planned {planned}, expected {clients}")
        timings.append(("(whole plan_run, incl. Python and COMMIT)", total))
        for number, (sql, seconds) in enumerate(timings):
            entry = per_statement.setdefault(number, {"sql": sql, "seconds": []})
            entry["seconds"].append(seconds)
    rows = []
    for entry in per_statement.values():
        sql = " ".join(entry["sql"].split())
        label = sql if len(sql) <= 90 else sql[:87] + "..."
        rows.append({"label": label, "seconds": entry["seconds"]})
    return rows


def build_scratch(kind: str) -> None:
    """The scratch table for one variant, its indexes created before the timed INSERT."""
    t = SCRATCH_TABLE
    create_plain_table(t, sequence=kind == "old design")
    if kind == "+ primary key":
        db.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (id)")  # noqa: S608
    if kind in ("today's indexes, row by row", "row by row + ON CONFLICT"):
        db.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (id)")  # noqa: S608
        db.execute(f"CREATE INDEX {t}_due ON {t} (next_attempt_at) WHERE status = 'pending'")
        db.execute(f"CREATE INDEX {t}_lease ON {t} (lease_expires_at) WHERE status = 'sending'")
    if kind == "old design":
        for statement in OLD_DESIGN_INDEXES:
            db.execute(statement.format(t=t))
    db.vacuum_analyze(t)


VARIANTS = (
    ("bare", "bare: no index, derived ids (the reference)"),
    ("sequence ids", "bare, ids from a sequence"),
    ("+ primary key", "+ primary key, row by row"),
    ("today's indexes, row by row", "primary key + due + lease indexes, row by row"),
    ("row by row + ON CONFLICT", "the same + ON CONFLICT (id) DO NOTHING"),
    ("old design", "before partitioning: sequence ids + 6 indexes, row by row"),
)


def measure_variant(kind: str, run, times, now, clients: int) -> dict:
    build_scratch(kind)
    sql, params = insert_sql(
        run,
        times,
        now,
        table=SCRATCH_TABLE,
        ids="sequence" if kind in ("sequence ids", "old design") else "derived",
        conflict=kind == "row by row + ON CONFLICT",
    )
    return time_statement(sql, params, clients)


def bulk_steps(run, times, now, clients: int) -> dict[str, float]:
    """plan_run's bulk path step by step on a scratch table (no ATTACH): load, then build."""
    from django.db import connection, transaction

    from api.services.sql.partitions import INDEX_BUILD_MEMORY

    t = SCRATCH_TABLE
    create_plain_table(t)
    db.vacuum_analyze(t)
    db.checkpoint()
    sql, params = insert_sql(run, times, now, table=t)
    steps = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX {t}_lease ON {t} (lease_expires_at) WHERE status = 'sending'")
        for label, statement, statement_params in (
            ("load (INSERT ... SELECT into the bare partition)", sql, params),
            (
                "SET LOCAL maintenance_work_mem",
                f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'",
                [],
            ),
            ("build the primary key (one sort)", f"ALTER TABLE {t} ADD PRIMARY KEY (id)", []),
            (
                "build the due index (one sort)",
                f"CREATE INDEX {t}_due ON {t} (next_attempt_at) WHERE status = 'pending'",
                [],
            ),
        ):
            started = time.perf_counter()
            cursor.execute(statement, statement_params)
            steps[label] = time.perf_counter() - started
    return steps


def breakdown(clients: int, repeat: int) -> dict:
    from django.utils import timezone

    common.header("plan_run, statement by statement")
    statements = plan_run_statements(clients, repeat)
    common.print_table(
        ["#", "statement", "median", "samples"],
        [
            [
                n,
                row["label"],
                common.secs(common.median(row["seconds"])),
                " ".join(f"{s:.3f}" for s in row["seconds"]),
            ]
            for n, row in enumerate(statements, 1)
        ],
        title=f"What plan_run spends its time on ({clients:,} rows, {repeat} plans)",
    )

    common.header("alternatives: the same rows into a scratch table")
    fixtures.drop_message_partitions()
    _, run = fixtures.create_campaign_and_run(tag="bench")
    now = timezone.now()
    times = run_times(run, now)
    results: dict[str, list[dict]] = {kind: [] for kind, _ in VARIANTS}
    bulk: list[dict[str, float]] = []
    for number in range(repeat):
        for kind, _ in VARIANTS:
            results[kind].append(measure_variant(kind, run, times, now, clients))
        bulk.append(bulk_steps(run, times, now, clients))
        print(
            f"  round {number + 1}/{repeat}: "
            + ", ".join(f"{kind} {results[kind][-1]['seconds']:.3f} s" for kind, _ in VARIANTS)
            + f", bulk {sum(bulk[-1].values()):.3f} s"
        )
    db.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")  # noqa: S608 - constant name
    base = common.median(r["seconds"] for r in results["bare"])
    table = []
    for kind, label in VARIANTS:
        med = common.median(r["seconds"] for r in results[kind])
        table.append(
            [
                label,
                common.secs(med),
                f"{clients / med:,.0f}",
                f"{base / med:.0%}",
                f"{common.median(r['wal_mb'] for r in results[kind]):.0f}",
            ]
        )
    for step in bulk[0]:
        med = common.median(b[step] for b in bulk)
        table.append([f"  bulk: {step}", common.secs(med), "", "", ""])
    bulk_total = common.median(sum(b.values()) for b in bulk)
    table.append(
        [
            "bulk: load, then build (plan_run's way, no ATTACH)",
            common.secs(bulk_total),
            f"{clients / bulk_total:,.0f}",
            f"{base / bulk_total:.0%}",
            "",
        ]
    )
    common.print_table(
        ["statement", "median", "rows/s", "bare/this", "WAL MB"],
        table,
        title=f"Row by row vs bulk ({clients:,} rows, {repeat} rounds)",
    )
    return {"statements": statements, "variants": results, "bulk_steps": bulk}


def compare(clients: int, rounds: int) -> dict:
    """Interleaved rounds: plan_run (bulk) vs the same rows row by row into a table with the
    same indexes vs bare. Per-round ratios cancel a noisy machine's slow drifts."""
    from django.utils import timezone

    samples: dict[str, list[float]] = {"plan_run": [], "row by row": [], "bare": []}
    for number in range(rounds):
        fixtures.drop_message_partitions()
        _, run = fixtures.create_campaign_and_run(tag="bench")
        now = timezone.now()
        times = run_times(run, now)
        order = list(samples) if number % 2 == 0 else list(reversed(samples))
        for key in order:
            if key == "plan_run":
                samples[key].append(time_plan_run(run.id, clients)["seconds"])
            elif key == "row by row":
                measured = measure_variant("today's indexes, row by row", run, times, now, clients)
                samples[key].append(measured["seconds"])
            else:
                samples[key].append(measure_variant("bare", run, times, now, clients)["seconds"])
        print(
            f"  round {number + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in samples.items())
        )
    db.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")  # noqa: S608 - constant name
    rows = []
    for key, values in samples.items():
        ratios = [b / v for b, v in zip(samples["bare"], values, strict=True)]
        rows.append(
            [
                key,
                common.secs(common.median(values)),
                f"{clients / common.median(values):,.0f}",
                f"{common.median(ratios):.2f}",
                f"{min(ratios):.2f}-{max(ratios):.2f}",
            ]
        )
    common.print_table(
        ["variant", "median", "rows/s", "bare/this (median of rounds)", "range"],
        rows,
        title=f"A/B: {clients:,} rows, {rounds} interleaved rounds",
    )
    return {"clients": clients, "rounds": rounds, "samples": samples}


def explain_insert(clients: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of plan_run's INSERT into a bare partition, rolled back."""
    from django.utils import timezone

    fixtures.drop_message_partitions()
    _, run = fixtures.create_campaign_and_run(tag="bench")
    now = timezone.now()
    sql, params = insert_sql(run, run_times(run, now), now, table="bench_explain_partition")
    with db.rolled_back():
        db.execute(
            "CREATE TABLE bench_explain_partition (LIKE api_message INCLUDING DEFAULTS"
            " INCLUDING CONSTRAINTS)"
        )
        return [
            row[0] for row in db.fetchall(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the breakdown")
    parser.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="only run ROUNDS interleaved rounds of plan_run vs row by row vs bare",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)

    _, machine = common.begin(
        f"planning benchmark: {args.clients:,} clients, {args.repeat} repetition(s)"
    )
    fixtures.ensure_clients(args.clients, tag="bench")
    fixtures.reset_campaigns()
    fixtures.drop_message_partitions()
    if args.compare:
        common.header("A/B: plan_run (bulk) vs row by row vs bare")
        outcome = compare(args.clients, args.compare)
        fixtures.drop_message_partitions()
        fixtures.reset_campaigns()
        common.save_results(f"planning-compare-{args.clients}", {"machine": machine, **outcome})
        return 0
    create_plain_table(BARE_TABLE)

    indexes = db.table_indexes("api_message")
    common.print_table(
        ["index on api_message (each partition has its own)", "columns", "predicate"],
        [[i["name"], ", ".join(i["columns"]), i["predicate"] or ""] for i in indexes],
        title="Indexes every planned row ends up in (built in bulk after the load)",
    )
    result = main_measurement(args.clients, args.repeat)
    clients = args.clients
    common.print_table(
        ["measure", "median", "messages/s", "samples"],
        [
            [
                "plan_run (new partition, bulk index builds, ATTACH)",
                common.secs(result["plan_median_s"]),
                f"{result['plan_rate']:,.0f}",
                " ".join(f"{s:.3f}" for s in result["plan_seconds"]),
            ],
            [
                "bare INSERT ... SELECT (no index/constraint)",
                common.secs(result["bare_median_s"]),
                f"{result['bare_rate']:,.0f}",
                " ".join(f"{s:.3f}" for s in result["bare_seconds"]),
            ],
        ],
        title=f"Planning {clients:,} messages over {len(fixtures.BENCH_TIMEZONES)} time zones",
    )
    print(
        f"ratio bare/plan_run (plan_run speed as a share of bare): {result['ratio']:.2f}"
        " (per repetition: " + " ".join(f"{r:.2f}" for r in result["ratio_per_repetition"]) + ")"
    )
    print(
        f"WAL per run (median): plan_run {result['plan_wal_mb']:.0f} MB,"
        f" bare {result['bare_wal_mb']:.0f} MB"
    )
    print(
        "peak RSS growth of the planning process: "
        + ", ".join(f"{g:.2f} MB" for g in result["rss_growth_mb"])
    )

    at_1m = clients >= 1_000_000
    targets = [
        [
            f"throughput >= {TARGET_RATE:,} msg/s",
            f"{result['plan_rate']:,.0f} msg/s",
            common.verdict(result["plan_rate"] >= TARGET_RATE),
        ],
        [
            f"1M clients planned in <= {TARGET_SECONDS_AT_1M:.0f} s",
            common.secs(result["plan_median_s"]) if at_1m else f"n/a at {clients:,}",
            common.verdict(result["plan_median_s"] <= TARGET_SECONDS_AT_1M) if at_1m else "n/a",
        ],
        [
            f"peak RSS growth < {TARGET_RSS_MB:.0f} MB",
            f"{result['rss_growth_max_mb']:.2f} MB (max of runs)",
            common.verdict(result["rss_growth_max_mb"] < TARGET_RSS_MB),
        ],
        [
            f"plan_run >= {TARGET_RATIO:.0%} of bare INSERT speed",
            f"{result['ratio']:.0%}",
            common.verdict(result["ratio"] >= TARGET_RATIO),
        ],
    ]
    common.print_targets(targets, measured="measured (median)")

    details: dict = {}
    if not args.no_breakdown:
        details = breakdown(clients, args.repeat)
        explain = explain_insert(clients)
        print("\nEXPLAIN (ANALYZE, BUFFERS) of plan_run's INSERT into a bare partition:")
        for line in explain:
            print("  " + line)
        details["explain"] = explain

    db.execute(f"DROP TABLE IF EXISTS {BARE_TABLE}")  # noqa: S608 - constant name
    fixtures.drop_message_partitions()
    fixtures.reset_campaigns()
    common.save_results(
        f"planning-{clients}",
        {"machine": machine, "result": result, "targets": targets, **details},
    )
    return common.exit_code(targets, args.strict)


if __name__ == "__main__":
    sys.exit(main())
