"""Postgres: the message table is partitioned by run (a range of message ids per run).

Why: planning writes a run's messages in one statement, and a b-tree filled row by row costs
more than the rows themselves (1M rows: ~0.7 s bare, ~2 s with the primary key and the due
index maintained per row; bench/README.md). A run's partition is created bare, loaded, then
its indexes are built in bulk (a sort each: ~0.2 s per 1M) and it is attached to the parent.
The parent's primary key and partial indexes are partitioned indexes: every partition has
them, and queries that name a run's id range (`api.message_ids.of_runs`) touch only that run's
partition.

On SQLite the table is a plain table: only the Postgres backend (api/services/sql/postgres.py)
calls these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection, transaction

from api.message_ids import MESSAGE_ID_RUN_STRIDE, run_message_ids, run_of
from api.models import Message

# Per partition; a partitioned parent cannot carry storage parameters. Every claim and outcome
# rewrites rows (status is in the partial indexes' predicates: no HOT update), so vacuum early
# and by absolute thresholds (bench/README.md, "Autovacuum").
AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 20000,"
    " autovacuum_vacuum_insert_scale_factor = 0.0,"
    " autovacuum_vacuum_insert_threshold = 100000,"
    " autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_limit = 2000,"
    " autovacuum_vacuum_cost_delay = 1"
)

# How long a merge may wait for the parent's exclusive lock (seconds), see merge_partitions.
MERGE_LOCK_TIMEOUT = 2.0

# The message table's partial indexes (Message.Meta.indexes), by name.
DUE_INDEX = "message_due_idx"
LEASE_INDEX = "message_lease_idx"

# Memory for the bulk index builds of one planning transaction (a 1M-row sort fits).
INDEX_BUILD_MEMORY = "128MB"


def table() -> str:
    return Message._meta.db_table


def partition_name(run_id: int) -> str:
    return f"{table()}_r{int(run_id)}"


def _index_sql(name: str, index_name: str) -> str:
    """CREATE INDEX for the partition `name` matching the parent's partial index `index_name`
    (so ATTACH adopts it instead of building its own), from the model's Meta.indexes."""
    from django.db.backends.ddl_references import Statement

    (index,) = [index for index in Message._meta.indexes if index.name == index_name]
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        sql = index.create_sql(Message, editor)
        assert isinstance(sql, Statement)
        sql.rename_table_references(table(), name)
        sql.parts["name"] = editor.quote_name(f"{name}_{index.name}")
        return str(sql)


def partition_exists(run_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(run_id)])
        return cursor.fetchone()[0]


def _create_bare(name: str, low: int, high: int) -> None:
    """A table shaped like the parent with only the lease index (empty while loading)."""
    quoted, parent = connection.ops.quote_name(name), connection.ops.quote_name(table())
    with connection.cursor() as cursor:
        # LIKE copies the columns, NOT NULLs and CHECK constraints ATTACH requires; the range
        # CHECK lets ATTACH skip its validation scan.
        cursor.execute(
            f"CREATE TABLE {quoted} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
            f" CONSTRAINT {connection.ops.quote_name(name + '_range')}"
            f" CHECK (id >= {int(low)} AND id < {int(high)})) WITH ({AUTOVACUUM})"
        )
        cursor.execute(_index_sql(name, LEASE_INDEX))


def _build_indexes(name: str) -> None:
    """The primary key and the due index, built in bulk (a sort each)."""
    quoted = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        cursor.execute(f"ALTER TABLE {quoted} ADD PRIMARY KEY (id)")
        cursor.execute(_index_sql(name, DUE_INDEX))


def _attach(name: str, low: int, high: int) -> None:
    quoted, parent = connection.ops.quote_name(name), connection.ops.quote_name(table())
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {quoted}"
            f" FOR VALUES FROM ({int(low)}) TO ({int(high)})"
        )
        # Attached, the partition bound says the same; the CHECK would only cost every
        # later UPDATE of these rows (claims, outcomes) an evaluation.
        range_check = connection.ops.quote_name(f"{name}_range")
        cursor.execute(f"ALTER TABLE {quoted} DROP CONSTRAINT {range_check}")


def create_run_partition(run_id: int, *, load: tuple[str, dict | list] | None = None) -> int:
    """Create, optionally fill, index and attach the run's partition; returns the rows loaded.

    `load` is an INSERT statement (and its named params) with `{partition}` where the target table
    goes. Must run inside the caller's transaction: if anything fails, nothing is left. The
    lease index (empty at planning) is built before the load, the primary key and the due
    index after it, in bulk.
    """
    name = partition_name(run_id)
    low, high = run_message_ids(run_id)
    _create_bare(name, low, high)
    rows = 0
    if load is not None:
        sql, params = load
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("{partition}", connection.ops.quote_name(name)), params)
            rows = max(cursor.rowcount, 0)
    _build_indexes(name)
    _attach(name, low, high)
    return rows


def ensure_run_partition(run_id: int) -> None:
    """The run's partition, empty, if it does not exist yet (rows then written one by one)."""
    if not partition_exists(run_id):
        create_run_partition(run_id)


# --- compaction: settled runs share one partition per block ------------------------------
@dataclass(frozen=True)
class Partition:
    name: str
    low: int  # first message id
    high: int  # one past the last
    rows: float  # the planner's estimate (reltuples; -1 when never counted)

    @property
    def single_run(self) -> bool:
        return self.high - self.low == MESSAGE_ID_RUN_STRIDE

    @property
    def first_run(self) -> int:
        return run_of(self.low)

    @property
    def last_run(self) -> int:
        return run_of(self.high) - 1


_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


def partitions() -> list[Partition]:
    """The message table's partitions in id order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [table()],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound, reltuples in rows:
        match = _BOUND.search(bound or "")
        if match:
            found.append(Partition(name, int(match[1]), int(match[2]), float(reltuples)))
    return sorted(found, key=lambda part: part.low)


def merge_partitions(parts: list[Partition]) -> str:
    """Replace consecutive partitions by one covering their whole id range; returns its name.

    Only for partitions whose rows no longer change (settled runs): they are copied into a new
    table, indexed in bulk, the old ones dropped and the new one attached, in one transaction.
    The copy runs under SHARE locks on the old partitions (readers go on); the parent is locked
    exclusively only from the DROP to the COMMIT, a few milliseconds.
    """
    low, high = parts[0].low, parts[-1].high
    name = f"{table()}_b{run_of(low)}_{run_of(high) - 1}"
    quoted, parent = connection.ops.quote_name(name), connection.ops.quote_name(table())
    olds = [connection.ops.quote_name(part.name) for part in parts]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(olds)} IN SHARE MODE")
        _create_bare(name, low, high)
        cursor.execute(
            f"INSERT INTO {quoted} SELECT * FROM {parent} WHERE id >= %s AND id < %s",
            [low, high],
        )
        _build_indexes(name)
        # The DROPs need the parent exclusively: wait at most this long for running queries
        # (and hold up new ones at most this long), else give up and try next time.
        cursor.execute(f"SET LOCAL lock_timeout = '{int(MERGE_LOCK_TIMEOUT * 1000)}ms'")
        for old in olds:
            cursor.execute(f"DROP TABLE {old}")
        _attach(name, low, high)
    return name
