"""Planning throughput: how fast `plan_run` turns an audience into Message rows.

Targets (from the issue):
  * >= 200,000 messages/s: a 1,000,000-client audience over 20 IANA zones planned in <= 5 s;
  * memory flat in audience size: peak RSS growth of the planning process < 50 MB at 1M;
  * >= 50 % of a bare `INSERT ... SELECT` of the same rows into a table with no indexes or
    constraints, measured in the same run (ratio = bare seconds / plan_run seconds).

Procedure: N clients tagged 'bench' over 20 zones (set-based fixture, reused when present); per
repetition a fresh campaign (09:00-21:00 daily window, start now, end in 3 days) and a
scheduled run; api_message and the bare table are TRUNCATEd, VACUUM ANALYZEd and CHECKPOINTed
before each timed statement; plan_run and the bare INSERT alternate which goes first. WAL
volume (all sessions) and checkpoints during each statement are printed too: a 1M-row plan
writes ~0.5 GB of WAL, enough to trigger a checkpoint at the default max_wal_size.

The breakdown then times the planner's statement into a scratch table while adding
api_message's real indexes (read from the catalog) one by one, so the cost of each index is
visible, flags redundant ones, and times the alternatives (ON CONFLICT, the old CASE form,
ORDER BY, a partial open-run index, the plan split into client-id chunks run at once).
`--compare ROUNDS` runs only the interleaved A/B of today's statement against those
alternatives, the least noisy way to judge a change on a busy machine.

    .venv/bin/python bench/bench_planning.py --clients 1000000 --repeat 3
    .venv/bin/python bench/bench_planning.py --clients 100000
    .venv/bin/python bench/bench_planning.py --clients 300000 --compare 7
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: I001 - the path line above must run first

BARE_TABLE = "bench_bare_message"
SCRATCH_TABLE = "bench_variant_message"
COLUMNS = (
    "run_id, client_id, status, planned_send_at, next_attempt_at, attempts, last_error,"
    " created_at"
)
TARGET_RATE = 200_000  # messages/s
TARGET_SECONDS_AT_1M = 5.0
TARGET_RSS_MB = 50.0
TARGET_RATIO = 0.50


def create_plain_table(name: str) -> None:
    """api_message's columns with no index, no constraint (not even NOT NULL) and no PK.

    The id still comes from a sequence, as api_message's identity column does.
    """
    common.execute(f"DROP TABLE IF EXISTS {name}")  # noqa: S608 - constant table name
    common.execute(f"DROP SEQUENCE IF EXISTS {name}_id_seq")  # noqa: S608
    common.execute(f"CREATE SEQUENCE {name}_id_seq")  # noqa: S608
    common.execute(
        f"CREATE TABLE {name} ("  # noqa: S608 - constant table name
        f" id bigint DEFAULT nextval('{name}_id_seq'), run_id bigint, client_id bigint,"
        " status varchar(16), planned_send_at timestamptz, next_attempt_at timestamptz,"
        " attempts integer, last_error text, lease_expires_at timestamptz, claim_token bigint,"
        " sent_at timestamptz, created_at timestamptz)"
    )
    common.execute(f"ALTER SEQUENCE {name}_id_seq OWNED BY {name}.id")  # noqa: S608


def insert_sql(
    run,
    times: dict[str, datetime],
    now: datetime,
    *,
    table: str,
    form: str = "values",
    conflict: bool = False,
    order: bool = False,
    id_range: tuple[int, int] | None = None,
):
    """The planner's INSERT ... SELECT of the run's messages aimed at `table`; (sql, params).

    form "values" joins the audience to a VALUES list of (zone, instant), as
    api.services.planning does since 3e7ed2b; "case" maps the zone with a CASE per timestamp
    column and an IN list, as it did before. conflict adds ON CONFLICT (run_id, client_id) DO
    NOTHING (needs the unique index), order adds ORDER BY (planned time, client id), id_range
    keeps the clients with id in [low, high) (one chunk of a chunked plan).
    """
    from django.db import connection

    from api.models import MessageStatus
    from api.selectors import campaign_audience

    audience_sql, audience_params = (
        campaign_audience(run.campaign).order_by().values("id", "timezone").query.sql_with_params()
    )
    adapt = connection.ops.adapt_datetimefield_value
    pairs: list = []
    for zone_name, moment in times.items():
        pairs += [zone_name, adapt(moment)]
    where, where_params = [], []
    if form == "case":
        case_sql = "CASE audience.timezone " + " ".join("WHEN %s THEN %s" for _ in times) + " END"
        select = f"SELECT %s, audience.id, %s, {case_sql}, {case_sql}, 0, '', %s"
        select_params = [run.id, MessageStatus.PENDING, *pairs, *pairs, adapt(now)]
        source = f" FROM ({audience_sql}) AS audience"
        source_params = list(audience_params)
        where.append(f"audience.timezone IN ({', '.join(['%s'] * len(times))})")
        where_params += list(times)
        order_sql = f" ORDER BY {case_sql}, audience.id"
        order_params = pairs
    else:
        values_sql = ", ".join("(%s, %s::timestamptz)" for _ in times)
        select = "SELECT %s, audience.id, %s, planned.at, planned.at, 0, '', %s"
        select_params = [run.id, MessageStatus.PENDING, adapt(now)]
        source = (
            f" FROM ({audience_sql}) AS audience JOIN (VALUES {values_sql}) AS planned (zone, at)"
            " ON planned.zone = audience.timezone"
        )
        source_params = [*audience_params, *pairs]
        order_sql, order_params = " ORDER BY planned.at, audience.id", []
    if id_range is not None:
        where.append("audience.id >= %s AND audience.id < %s")
        where_params += list(id_range)
    sql = f"INSERT INTO {table} ({COLUMNS}) {select}{source}"  # noqa: S608 - constants, %s
    params = [*select_params, *source_params]
    if where:
        sql += " WHERE " + " AND ".join(where)
        params += where_params
    if order:
        sql += order_sql
        params += order_params
    if conflict:
        sql += " ON CONFLICT (run_id, client_id) DO NOTHING"
    return sql, params


def run_times(run, now: datetime) -> dict[str, datetime]:
    from api.selectors import audience_by_timezone
    from api.services.planning import planned_times

    return planned_times(run.campaign, list(audience_by_timezone(run.campaign)), now)


def fresh_tables() -> None:
    common.execute(f"TRUNCATE api_message, {BARE_TABLE}")  # noqa: S608 - constant name
    common.vacuum_analyze("api_message", BARE_TABLE)


def time_plan_run(run_id: int, expected: int) -> dict:
    """seconds, peak RSS growth (MB), WAL (MB) and checkpoints of one plan_run call."""
    from api.services.planning import plan_run

    common.checkpoint()
    with (
        common.wal_probe() as wal,
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

    common.checkpoint()
    with (
        common.wal_probe() as wal,
        common.stopwatch() as elapsed,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
        rows = cursor.rowcount
    if rows != expected:
        raise SystemExit(f"the INSERT wrote {rows} rows, expected {expected}")
    return {"seconds": elapsed(), **wal()}


def time_in_chunks(build, expected: int, chunks: int) -> dict:
    """`build(id_range) -> (sql, params)` run as `chunks` client-id ranges at once, each on its
    own connection (its own transaction); wall-clock seconds for all of them."""
    import threading

    import psycopg
    from django.db import connection

    low, high = common.fetchall(
        "SELECT min(id), max(id) + 1 FROM api_client WHERE tag = 'bench' AND deleted_at IS NULL"
    )[0]
    step = -(-(high - low) // chunks)
    statements = []
    for number in range(chunks):
        sql, params = build((low + number * step, min(low + (number + 1) * step, high)))
        with connection.cursor() as cursor:
            statements.append(cursor.mogrify(sql, params))
    url = common.bench_database_url().replace("postgres://", "postgresql://", 1)
    connections = [psycopg.connect(url, autocommit=True) for _ in statements]
    counts: list[int] = []
    errors: list[BaseException] = []

    def work(conn, text):
        try:
            counts.append(conn.execute(text).rowcount)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=pair)
        for pair in zip(connections, statements, strict=True)
    ]
    common.checkpoint()
    with common.wal_probe() as wal, common.stopwatch() as elapsed:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for conn in connections:
        conn.close()
    if errors:
        raise errors[0]
    if sum(counts) != expected:
        raise SystemExit(f"the chunks wrote {sum(counts)} rows, expected {expected}")
    return {"seconds": elapsed(), **wal()}


def main_measurement(clients: int, repeat: int) -> dict:
    from django.utils import timezone

    plans, bares = [], []
    for index in range(repeat):
        fresh_tables()
        _, run = common.create_campaign_and_run(tag="bench")
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
            f" checkpoints {bare['checkpoints']}); loadavg {os.getloadavg()[0]:.2f}"
        )
    plan_median = common.median(p["seconds"] for p in plans)
    bare_median = common.median(b["seconds"] for b in bares)
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
        "rss_growth_max_mb": max(p["rss_mb"] for p in plans),
        "plan_wal_mb": common.median(p["wal_mb"] for p in plans),
        "bare_wal_mb": common.median(b["wal_mb"] for b in bares),
    }


# --- breakdown ------------------------------------------------------------------------------
# The index proposed for finish_completed_runs (see bench_sweep.py): only unsent rows.
PARALLEL = max(2, min(4, os.cpu_count() or 2))  # chunks planned concurrently
OPEN_RUN_INDEX = (
    "CREATE INDEX message_open_run_idx ON public.api_message USING btree (run_id)"
    " WHERE status IN ('pending', 'sending', 'paused')"
)


def scratch_index_sql(index: dict, number: int) -> str:
    """The api_message index's own definition, re-aimed at the scratch table."""
    definition = index["definition"]
    target = f" {index['name']} ON public.api_message "
    if target not in definition:
        raise SystemExit(f"unexpected index definition: {definition}")
    return definition.replace(target, f" {SCRATCH_TABLE}_{number} ON public.{SCRATCH_TABLE} ", 1)


def breakdown_variants(indexes: list[dict]) -> list[dict]:
    """Cumulative: bare, then api_message's indexes added one by one (primary key, unique,
    the other non-redundant ones, the redundant ones last) until the scratch table has exactly
    api_message's set ("today"); then alternatives, each compared with today."""

    def rank(index: dict) -> tuple:
        return (
            not index["primary"],
            not index["unique"],
            index["covered_by"] is not None,
            index["name"],
        )

    ordered = sorted(indexes, key=rank)
    variants = [{"key": "bare", "label": "bare: no index", "indexes": [], "ref": None}]
    chain: list[dict] = []
    for index in ordered:
        chain = [*chain, index]
        label = f"+ {index['name']}" + (" (redundant)" if index["covered_by"] else "")
        variants.append(
            {"key": index["name"], "label": label, "indexes": chain, "ref": variants[-1]["label"]}
        )
    variants[-1]["key"] = "today"
    today = variants[-1]["label"] = variants[-1]["label"] + " = today"

    def alternative(key: str, label: str, indexes: list[dict], **options) -> None:
        variants.append({"key": key, "label": label, "indexes": indexes, "ref": today, **options})

    alternative(
        "conflict", "today + ON CONFLICT DO NOTHING (before 3e7ed2b)", ordered, conflict=True
    )
    alternative("case", "today, CASE instead of VALUES (before 3e7ed2b)", ordered, form="case")
    alternative("order", "today + ORDER BY planned time, client id", ordered, order=True)
    kept = [i for i in ordered if not i["covered_by"]]
    if len(kept) < len(ordered):
        alternative("kept", "today minus redundant indexes", kept)
    open_run = {
        "name": "message_open_run_idx",
        "definition": OPEN_RUN_INDEX,
        "primary": False,
        "unique": False,
        "covered_by": None,
    }
    alternative("open_run", "+ partial (run_id) WHERE open (sweep proposal)", [*kept, open_run])
    alternative("chunks", f"today in {PARALLEL} client-id chunks at once", kept, parallel=PARALLEL)
    variants.append(
        {"key": "bare_case", "label": "bare, CASE", "indexes": [], "ref": "bare: no index"}
    )
    return variants


def measure_variant(variant: dict, run, times, now, clients: int) -> dict:
    """Scratch table with the variant's indexes, then its INSERT (or chunked INSERTs)."""
    create_plain_table(SCRATCH_TABLE)
    for number, index in enumerate(variant["indexes"]):
        common.execute(scratch_index_sql(index, number))
    common.vacuum_analyze(SCRATCH_TABLE)
    options = {
        "form": variant.get("form", "values"),
        "conflict": variant.get("conflict", False),
        "order": variant.get("order", False),
    }
    if variant.get("parallel"):
        return time_in_chunks(
            lambda id_range: insert_sql(
                run, times, now, table=SCRATCH_TABLE, id_range=id_range, **options
            ),
            clients,
            variant["parallel"],
        )
    sql, params = insert_sql(run, times, now, table=SCRATCH_TABLE, **options)
    return time_statement(sql, params, clients)


def breakdown(clients: int, repeat: int) -> tuple[list[dict], list[str]]:
    from django.utils import timezone

    from api.selectors import audience_by_timezone
    from api.services.planning import plan_run

    common.execute("TRUNCATE api_message")
    _, run = common.create_campaign_and_run(tag="bench")
    now = timezone.now()
    times = run_times(run, now)
    rows = []
    samples = common.time_calls(
        lambda: audience_by_timezone(run.campaign), repeat=max(repeat, 3), warmup=1
    )
    rows.append(
        {
            "label": "audience_by_timezone (grouped scan)",
            "seconds": samples,
            "wal_mb": [0.0],
            "ref": None,
        }
    )
    for variant in breakdown_variants(common.table_indexes("api_message")):
        runs = [measure_variant(variant, run, times, now, clients) for _ in range(repeat)]
        rows.append(
            {
                "label": variant["label"],
                "indexes": [i["name"] for i in variant["indexes"]],
                "seconds": [r["seconds"] for r in runs],
                "wal_mb": [r["wal_mb"] for r in runs],
                "checkpoints": [r["checkpoints"] for r in runs],
                "ref": variant["ref"],
            }
        )
        print(
            f"  {variant['label']}: "
            + ", ".join(
                f"{r['seconds']:.3f} s (WAL {r['wal_mb']:.0f} MB, ckpt {r['checkpoints']})"
                for r in runs
            )
        )
    common.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")  # noqa: S608 - constant name
    # The planner's own INSERT, captured from a plan_run and EXPLAIN ANALYZEd, rolled back.
    plans = common.explain_captured(
        lambda: plan_run(run_id=run.id), between=lambda: common.vacuum_analyze("api_message")
    )
    plan = next((lines for lines in plans if lines[0].lstrip().startswith("INSERT")), [])
    common.vacuum_analyze("api_message")
    return rows, plan


def compare(clients: int, rounds: int) -> dict:
    """Interleaved rounds on scratch tables: today's index set and statement against the
    alternatives that matter (ON CONFLICT back, ORDER BY, chunks at once). Per-round ratios
    cancel the slow drifts of a noisy machine better than separate medians do."""
    from django.utils import timezone

    common.execute("TRUNCATE api_message")
    _, run = common.create_campaign_and_run(tag="bench")
    now = timezone.now()
    times = run_times(run, now)
    variants = {v["key"]: v for v in breakdown_variants(common.table_indexes("api_message"))}
    picked = {key: variants[key] for key in ("today", "conflict", "order", "chunks")}
    samples: dict[str, list[float]] = {key: [] for key in picked}
    for number in range(rounds):
        keys = list(picked) if number % 2 == 0 else list(reversed(picked))
        for key in keys:
            measured = measure_variant(picked[key], run, times, now, clients)
            samples[key].append(measured["seconds"])
        print(
            f"  round {number + 1}/{rounds}: "
            + ", ".join(f"{key} {samples[key][-1]:.3f} s" for key in picked)
        )
    common.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")  # noqa: S608 - constant name
    rows = []
    for key, variant in picked.items():
        ratios = [t / s for t, s in zip(samples["today"], samples[key], strict=True)]
        med = common.median(samples[key])
        rows.append(
            [
                variant["label"],
                common.secs(med),
                f"{clients / med:,.0f}",
                f"{common.median(ratios):.2f}x",
                f"{min(ratios):.2f}-{max(ratios):.2f}",
            ]
        )
    common.print_table(
        ["variant", "median", "rows/s", "speed vs today (median of rounds)", "range"],
        rows,
        title=f"A/B: {clients:,} rows, {rounds} interleaved rounds",
    )
    return {"clients": clients, "rounds": rounds, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip the per-index cost breakdown"
    )
    parser.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="only run ROUNDS interleaved rounds of today's index set vs the proposals",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)

    url = common.setup_django()
    common.header(f"planning benchmark: {args.clients:,} clients, {args.repeat} repetition(s)")
    machine = common.print_machine({"database": common.redact(url), "git": common.git_revision()})
    common.ensure_clients(args.clients, tag="bench")
    common.reset_campaigns()
    if args.compare:
        common.header("A/B: today's indexes vs the proposals")
        outcome = compare(args.clients, args.compare)
        common.reset_campaigns()
        common.save_results(f"planning-compare-{args.clients}", {"machine": machine, **outcome})
        return 0
    create_plain_table(BARE_TABLE)

    indexes = common.table_indexes("api_message")
    common.print_table(
        ["index on api_message", "columns", "predicate", "redundant (covered by)"],
        [
            [i["name"], ", ".join(i["columns"]), i["predicate"] or "", i["covered_by"] or ""]
            for i in indexes
        ],
        title="Indexes every planned row is written to (partial ones only when it matches)",
    )
    result = main_measurement(args.clients, args.repeat)
    clients = args.clients
    common.print_table(
        ["measure", "median", "messages/s", "samples"],
        [
            [
                "plan_run (api_message, all indexes)",
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
        title=f"Planning {clients:,} messages over {len(common.BENCH_TIMEZONES)} time zones",
    )
    print(f"ratio bare/plan_run (plan_run speed as a share of bare): {result['ratio']:.2f}")
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
    common.print_table(["target", "measured (median)", "verdict"], targets, title="Targets")

    breakdown_rows, explain = [], []
    if not args.no_breakdown:
        common.header("breakdown: the same INSERT into a scratch table, index by index")
        breakdown_rows, explain = breakdown(clients, args.repeat)
        medians = {row["label"]: common.median(row["seconds"]) for row in breakdown_rows}
        numbers = {row["label"]: number for number, row in enumerate(breakdown_rows, 1)}
        base = medians["bare: no index"]
        table = []
        for number, row in enumerate(breakdown_rows, 1):
            med = medians[row["label"]]
            ref = row["ref"]
            table.append(
                [
                    number,
                    row["label"],
                    common.secs(med),
                    f"{clients / med:,.0f}",
                    f"{base / med:.0%}",
                    f"{common.median(row['wal_mb']):.0f}",
                    f"{med - medians[ref]:+.3f} s" if ref else "",
                    f"#{numbers[ref]}" if ref else "",
                ]
            )
        common.print_table(
            ["#", "statement", "median", "rows/s", "bare/this", "WAL MB", "delta", "vs"],
            table,
            title=f"Where planning time goes ({clients:,} rows; '+' rows are cumulative)",
        )
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the INSERT plan_run sends (captured, rolled back):")
        for number, line in enumerate(explain):
            print("  " + (line if number or len(line) < 160 else line[:157] + "..."))

    common.execute(f"DROP TABLE IF EXISTS {BARE_TABLE}")  # noqa: S608 - constant name
    common.reset_campaigns()
    common.save_results(
        f"planning-{clients}",
        {
            "machine": machine,
            "result": result,
            "targets": targets,
            "breakdown": breakdown_rows,
            "explain": explain,
        },
    )
    failed = any(row[2] == "FAIL" for row in targets)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
