"""Shared helpers for the benchmark scripts: database setup, fixtures, timing, memory, output.

Every script calls `setup_django()` first. It points Django at a dedicated Postgres database
(`BENCH_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/tds_bench), creates it when
missing, runs the migrations and returns. Nothing here is imported by the service itself.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tds_bench"

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


# --- database and Django -------------------------------------------------------------------
def bench_database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def ensure_database(url: str) -> bool:
    """Create the database named in `url` when it does not exist; True when created."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit(f"BENCH_DATABASE_URL has no database name: {url}")
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    admin_url = admin_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')  # noqa: S608 - name from the operator's URL
    return True


def setup_django(*, extra_env: dict[str, str] | None = None, migrate: bool = True) -> str:
    """Point Django at the bench database (created if missing), migrate, django.setup().

    `extra_env` is applied before the settings are read (e.g. CELERY_BROKER_URL).
    Returns the database URL in use.
    """
    url = bench_database_url()
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"The benchmarks need Postgres; BENCH_DATABASE_URL={url}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "Work.settings"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # plan/dispatch log lines would skew timings
    os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG keeps every query in memory
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-use")
    for key, value in (extra_env or {}).items():
        os.environ[key] = value
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    created = ensure_database(url)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    if created:
        print(f"created database {redact(url)}")
    return url


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def execute(sql: str, params: Sequence | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetchall(sql: str, params: Sequence | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def fetchval(sql: str, params: Sequence | None = None):
    rows = fetchall(sql, params)
    return rows[0][0] if rows else None


def vacuum_analyze(*tables: str) -> None:
    """VACUUM cannot run in a transaction; Django's connection is in autocommit here."""
    for table in tables:
        execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - table names are constants


def checkpoint() -> None:
    """Flush dirty pages so one measurement does not pay for the previous one's writes."""
    execute("CHECKPOINT")


@contextmanager
def wal_probe():
    """with wal_probe() as probe: ...; probe() -> {"wal_mb": WAL written (all sessions),
    "checkpoints": checkpoints that started meanwhile}. Shows when a statement's cost includes
    a checkpoint it triggered (max_wal_size) and how much WAL each index adds."""
    query = (
        "SELECT pg_current_wal_insert_lsn(), checkpoints_timed + checkpoints_req"
        " FROM pg_stat_bgwriter"
    )
    execute("SELECT pg_stat_clear_snapshot()")
    lsn_before, checkpoints_before = fetchall(query)[0]
    result: dict[str, float] = {}

    def probe() -> dict[str, float]:
        return result

    yield probe
    execute("SELECT pg_stat_clear_snapshot()")
    lsn_after, checkpoints_after = fetchall(query)[0]
    wal = fetchval("SELECT pg_wal_lsn_diff(%s, %s)", [lsn_after, lsn_before])
    result["wal_mb"] = float(wal) / 1e6
    result["checkpoints"] = checkpoints_after - checkpoints_before


def postgres_settings() -> dict[str, str]:
    names = (
        "server_version",
        "shared_buffers",
        "work_mem",
        "maintenance_work_mem",
        "max_wal_size",
        "synchronous_commit",
        "autovacuum",
        "jit",
    )
    rows = fetchall(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [list(names)]
    )
    return dict(rows)


def table_indexes(table: str) -> list[dict]:
    """The table's indexes in creation order, each with `covered_by`: the index that makes it
    redundant (same predicate, its columns a prefix of the other's), or None."""
    rows = fetchall(
        "SELECT c.relname, i.indisunique, i.indisprimary, pg_get_expr(i.indpred, i.indrelid),"
        " i.indexprs IS NOT NULL,"
        " ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        "       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        "       ORDER BY k.ord),"
        " pg_get_indexdef(i.indexrelid), pg_relation_size(i.indexrelid)"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass ORDER BY c.oid",
        [table],
    )
    indexes = [
        {
            "name": name,
            "unique": unique,
            "primary": primary,
            "predicate": predicate,
            "expressions": expressions,
            "columns": list(columns),
            "definition": definition,
            "bytes": size,
            "covered_by": None,
        }
        for name, unique, primary, predicate, expressions, columns, definition, size in rows
    ]
    for position, index in enumerate(indexes):
        if index["unique"] or index["expressions"]:
            continue
        for other_position, other in enumerate(indexes):
            if other is index or other["expressions"] or other["predicate"] != index["predicate"]:
                continue
            cols, other_cols = index["columns"], other["columns"]
            if other_cols[: len(cols)] != cols:
                continue
            # A longer index covers a shorter one; of two identical ones the older covers.
            if len(other_cols) > len(cols) or other_position < position:
                index["covered_by"] = other["name"]
                break
    return indexes


# --- fixtures ------------------------------------------------------------------------------
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
    execute("TRUNCATE api_message, api_runstatuscount, api_campaignrun, api_campaign")


def explain_captured(
    func: Callable[[], object],
    *,
    analyze: bool = True,
    between: Callable[[], object] | None = None,
) -> list[list[str]]:
    """Run `func` once inside a rolled-back transaction, capturing its SQL; then EXPLAIN
    (ANALYZE, BUFFERS) each captured statement, also rolled back. One plan per statement,
    each [sql, plan lines...]. `between` runs after the capture (e.g. a VACUUM, so the
    EXPLAIN does not wade through the rows the capture wrote and rolled back)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    class _Rollback(Exception):
        pass

    try:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            func()
            raise _Rollback
    except _Rollback:
        pass
    if between is not None:
        between()
    plans = []
    options = "ANALYZE, BUFFERS, COSTS OFF" if analyze else "COSTS OFF"
    for query in captured.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH", "INSERT", "DELETE")):
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN ({options}) {sql}")
                lines = [sql] + [row[0] for row in cursor.fetchall()]
                raise _Rollback
        except _Rollback:
            plans.append(lines)
    return plans


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


# --- timing --------------------------------------------------------------------------------
@contextmanager
def stopwatch():
    """with stopwatch() as elapsed: ...; elapsed() -> seconds (frozen at exit)."""
    started = time.perf_counter()
    result: list[float] = []
    yield lambda: result[0] if result else time.perf_counter() - started
    result.append(time.perf_counter() - started)


def time_calls(
    func: Callable[[], object],
    *,
    repeat: int,
    warmup: int = 0,
    before: Callable[[], object] | None = None,
) -> list[float]:
    """Seconds per call of `func`; `before` runs untimed ahead of each call."""
    for _ in range(warmup):
        if before:
            before()
        func()
    samples = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


def median(samples: Iterable[float]) -> float:
    return statistics.median(list(samples))


def percentile(samples: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median": median(samples),
        "p95": percentile(samples, 95),
        "min": min(samples),
        "max": max(samples),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


# --- memory (Linux /proc, no psutil) -------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def rss_kib() -> int:
    return _status_kib("VmRSS")


def hwm_kib() -> int:
    return _status_kib("VmHWM")


def reset_hwm() -> bool:
    """Reset VmHWM (the peak RSS) to the current RSS; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


@contextmanager
def peak_rss_growth():
    """with peak_rss_growth() as growth: ...; growth() -> MB (10**6 bytes) the peak RSS of this
    process rose above its RSS at the start of the block.

    Resets VmHWM via /proc/self/clear_refs so the peak is this block's own.
    """
    gc.collect()
    if not reset_hwm():
        raise RuntimeError("cannot reset VmHWM (/proc/self/clear_refs not writable)")
    before = rss_kib()
    result: list[float] = []
    yield lambda: result[0] if result else (hwm_kib() - before) * 1024 / 1e6
    result.append((hwm_kib() - before) * 1024 / 1e6)


# --- output --------------------------------------------------------------------------------
def print_table(headers: Sequence[str], rows: Iterable[Sequence], *, title: str = "") -> None:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    if title:
        print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                cell.rjust(w) if _numeric(cell) else cell.ljust(w)
                for cell, w in zip(row, widths, strict=False)
            )
        )


def _numeric(cell: str) -> bool:
    """Right-align figures ("12.3 ms", "1,000 (bench)"), not sentences that start with one."""
    words = cell.split()
    if not words or len(words) > 2:
        return False
    head = words[0].replace(",", "").replace(".", "").replace("%", "").lstrip("+-").rstrip("x")
    return head.isdigit()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def header(title: str) -> None:
    print(f"\n=== {title} ===")


def machine_info() -> dict[str, str]:
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    try:
        with open("/proc/meminfo") as meminfo:
            total_kib = int(meminfo.readline().split()[1])
        info["ram"] = f"{total_kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
        info["loadavg"] = " ".join(f"{x:.2f}" for x in load)
    except OSError:
        pass
    return info


def print_machine(extra: dict[str, str] | None = None) -> dict[str, str]:
    info = machine_info()
    try:
        pg = postgres_settings()
        info["postgres"] = pg.pop("server_version", "?")
        info["pg_settings"] = ", ".join(f"{k}={v}" for k, v in sorted(pg.items()))
    except Exception as exc:  # noqa: BLE001 - machine info is best effort
        info["postgres"] = f"unknown ({type(exc).__name__})"
    info.update(extra or {})
    for key, value in info.items():
        print(f"{key:>12}: {value}")
    return info


def save_results(name: str, payload: dict) -> Path:
    """bench/results/<name>-<utc timestamp>.json (git-ignored) for later comparison."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nresults saved to {path.relative_to(ROOT)}")
    return path


def _git(*args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["git", "-C", str(ROOT), *args],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return completed.stdout.strip()


def git_revision() -> str:
    """Short HEAD, "+dirty" when api/ or Work/ have uncommitted changes."""
    try:
        dirty = _git("status", "--porcelain", "--", "api", "Work")
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
