"""SQLite: plain tables, one writer at a time (a statement is atomic by itself). Also the
interface PostgresBackend overrides."""

from __future__ import annotations

import json

from django.db import connection

from api.message_ids import run_message_ids

from .imports import SqliteImports


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


class SqliteBackend:
    name = "sqlite"
    # Messages live in one partition per run (Postgres); compaction has nothing to merge here.
    partitioned = False
    imports = SqliteImports()  # the bulk client import's differences

    # --- planning ---------------------------------------------------------------------------
    def load_run_messages(
        self, run_id: int, *, table: str, columns: str, select: str, params: dict
    ):
        """INSERT the run's messages (`select` yields them); returns the rows written. Rows
        already there (tests write some by hand) make a repeat a no-op."""
        low, high = run_message_ids(run_id)
        sql = (
            f"INSERT INTO {quote(table)} {columns} SELECT * FROM ({select}) AS planned"
            f" WHERE NOT EXISTS (SELECT 1 FROM {quote(table)}"
            " WHERE id >= %(run_low)s AND id < %(run_high)s)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, {**params, "run_low": low, "run_high": high})
            return max(cursor.rowcount, 0)

    def ensure_run_partition(self, run_id: int) -> None:
        """Postgres gives each run a partition; nothing to do here."""

    # --- lists as one named parameter (api/lookups.py's any_of, in raw SQL) -----------------
    def any_of_sql(self, column: str, name: str) -> str:
        """`column` is one of the list bound as %(name)s (list_param's value)."""
        return f"{column} IN (SELECT value FROM json_each(%({name})s))"

    def list_param(self, values) -> object:
        return json.dumps([value if isinstance(value, int) else str(value) for value in values])

    # --- claims -------------------------------------------------------------------------------
    def claim_where(self, due_sql: str, runs_sql: str) -> str:
        """The claim UPDATE's WHERE: one writer at a time, so the statement is atomic."""
        return f"id IN ({due_sql})"

    # --- read side ----------------------------------------------------------------------------
    def zone_names_sql(self, table: str) -> str:
        return f"SELECT DISTINCT timezone FROM {quote(table)}"

    def iso_utc(self, expression: str) -> str:
        """A datetime column as DRF writes it. Django keeps SQLite times as naive UTC text,
        'YYYY-MM-DD HH:MM:SS[.ffffff]'."""
        return f"replace({expression}, ' ', 'T') || 'Z'"

    def latest_runs_sql(self, table: str, *, one: bool) -> str:
        """Each campaign's newest run (one campaign's when `one`: a %s for its id)."""
        return (
            f"SELECT * FROM {quote(table)} r WHERE r.number = (SELECT MAX(n.number)"
            f" FROM {quote(table)} n WHERE n.campaign_id = r.campaign_id)"
            + (" AND r.campaign_id = %s" if one else "")
        )

    # --- counters -----------------------------------------------------------------------------
    def hold_message_writes(self, table: str) -> None:
        """Writers of messages wait until the transaction ends (a recount's repair). SQLite
        has one writer: the transaction's own write lock already does it."""

    def fold_shards(self, table: str, *, key: str, value: str) -> int:
        """Shards exist per Postgres backend only; SQLite writes shard 0."""
        return 0

    def minute_sql(self, column: str) -> str:
        """A datetime column cut to its minute (SQLite keeps naive UTC text)."""
        return f"substr({column}, 1, 16) || ':00'"

    # --- compaction ---------------------------------------------------------------------------
    def partitions(self) -> list:
        return []
