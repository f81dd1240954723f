"""Postgres: the message table is partitioned by run (a range of message ids per run).

Why: planning writes a run's messages in one statement, and a b-tree filled row by row costs
more than the rows themselves (1M rows: ~0.7 s bare, ~2 s with the primary key and the due
index maintained per row; bench/README.md). A run's partition is created bare, loaded, then
its indexes are built in bulk (a sort each: ~0.2 s per 1M) and it is attached to the parent.
The parent's primary key and partial indexes are partitioned indexes: every partition has
them, and queries that name a run's id range (`api.models.of_runs`) touch only that run's
partition.

On SQLite the table is a plain table and these functions are not called.
"""

from __future__ import annotations

from django.db import connection

from api.models import Message, run_message_ids

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

# Memory for the bulk index builds of one planning transaction (a 1M-row sort fits).
INDEX_BUILD_MEMORY = "128MB"


def table() -> str:
    return Message._meta.db_table


def partition_name(run_id: int) -> str:
    return f"{table()}_r{int(run_id)}"


def _partial_indexes(name: str) -> list[str]:
    """CREATE INDEX statements matching the parent's partial indexes (so ATTACH adopts them
    instead of building its own), from the model's Meta.indexes."""
    from django.db.backends.ddl_references import Statement

    statements = []
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for index in Message._meta.indexes:
            sql = index.create_sql(Message, editor)
            assert isinstance(sql, Statement)
            sql.rename_table_references(table(), name)
            sql.parts["name"] = editor.quote_name(f"{name}_{index.name}")
            statements.append(str(sql))
    return statements


def partition_exists(run_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(run_id)])
        return cursor.fetchone()[0]


def create_run_partition(run_id: int, *, load: tuple[str, list] | None = None) -> int:
    """Create, optionally fill, index and attach the run's partition; returns the rows loaded.

    `load` is an INSERT statement (and its params) with `{partition}` where the target table
    goes. Must run inside the caller's transaction: if anything fails, nothing is left. The
    lease index (empty at planning) is built before the load, the primary key and the due
    index after it, in bulk.
    """
    name = partition_name(run_id)
    quoted, parent = connection.ops.quote_name(name), connection.ops.quote_name(table())
    low, high = run_message_ids(run_id)
    due, lease = _partial_indexes(name)
    range_check = connection.ops.quote_name(f"{name}_range")
    rows = 0
    with connection.cursor() as cursor:
        # LIKE copies the columns, NOT NULLs and CHECK constraints ATTACH requires; the range
        # CHECK lets ATTACH skip its validation scan.
        cursor.execute(
            f"CREATE TABLE {quoted} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
            f" CONSTRAINT {range_check}"
            f" CHECK (id >= {low} AND id < {high})) WITH ({AUTOVACUUM})"
        )
        cursor.execute(lease)
        if load is not None:
            sql, params = load
            cursor.execute(sql.replace("{partition}", quoted), params)
            rows = max(cursor.rowcount, 0)
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        cursor.execute(f"ALTER TABLE {quoted} ADD PRIMARY KEY (id)")
        cursor.execute(due)
        cursor.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {quoted} FOR VALUES FROM ({low}) TO ({high})"
        )
        # Attached, the partition bound says the same; the CHECK would only cost every
        # later UPDATE of the run's rows (claims, outcomes) an evaluation.
        cursor.execute(f"ALTER TABLE {quoted} DROP CONSTRAINT {range_check}")
    return rows


def ensure_run_partition(run_id: int) -> None:
    """The run's partition, empty, if it does not exist yet (rows written one by one: tests)."""
    if connection.vendor == "postgresql" and not partition_exists(run_id):
        create_run_partition(run_id)
