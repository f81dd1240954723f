"""Postgres helpers for the benchmarks: statements, VACUUM/CHECKPOINT, WAL probes, settings,
index redundancy, EXPLAIN of captured statements and rolled-back blocks.

All but `ensure_database` go through Django's connection (call `common.setup_django()` first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


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


@contextmanager
def rolled_back():
    """with rolled_back(): ... runs the block in a transaction that is always rolled back."""
    from django.db import transaction

    class _Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


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
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with rolled_back(), CaptureQueriesContext(connection) as captured:
        func()
    if between is not None:
        between()
    plans = []
    options = "ANALYZE, BUFFERS, COSTS OFF" if analyze else "COSTS OFF"
    for query in captured.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH", "INSERT", "DELETE")):
            continue
        with rolled_back(), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN ({options}) {sql}")
            plans.append([sql] + [row[0] for row in cursor.fetchall()])
    return plans
