"""Postgres: a partition per run (loaded bare, indexed in bulk, attached), claims with FOR
UPDATE SKIP LOCKED, counter shards per backend, a loose index scan for the zones."""

from __future__ import annotations

from django.db import connection, transaction

from . import partitions
from .imports import PostgresImports
from .sqlite import SqliteBackend, quote


class PostgresBackend(SqliteBackend):
    name = "postgresql"
    partitioned = True
    imports = PostgresImports()

    def load_run_messages(self, run_id: int, *, table: str, columns: str, select: str, params):
        if partitions.partition_exists(run_id):  # tests create some by hand
            return super().load_run_messages(
                run_id, table=table, columns=columns, select=select, params=params
            )
        # A bare partition, loaded, then indexed in bulk and attached. No trigger sees rows
        # loaded before the attach: the caller counts them.
        return partitions.create_run_partition(
            run_id, load=(f"INSERT INTO {{partition}} {columns} {select}", params)
        )

    def ensure_run_partition(self, run_id: int) -> None:
        partitions.ensure_run_partition(run_id)

    def any_of_sql(self, column: str, name: str) -> str:
        return f"{column} = ANY(%({name})s)"

    def list_param(self, values) -> object:
        return list(values)

    def claim_where(self, due_sql: str, runs_sql: str) -> str:
        # `id = ANY(ARRAY(...))` pins the plan to primary-key lookups; a plain `IN (SELECT ...)`
        # was planned as a hash semi-join over a sequential scan: O(table) per claim.
        return f"id = ANY(ARRAY({due_sql} FOR UPDATE SKIP LOCKED)) AND {runs_sql}"

    def zone_names_sql(self, table: str) -> str:
        # A loose index scan over client_timezone_idx: one probe per distinct zone (a few
        # hundred at most), whatever the number of clients.
        return (
            "WITH RECURSIVE zones (name) AS ("
            f" (SELECT timezone FROM {quote(table)} ORDER BY timezone LIMIT 1)"
            " UNION ALL"
            f" SELECT (SELECT timezone FROM {quote(table)} WHERE timezone > zones.name"
            "  ORDER BY timezone LIMIT 1) FROM zones WHERE zones.name IS NOT NULL"
            ") SELECT name FROM zones WHERE name IS NOT NULL"
        )

    def iso_utc(self, expression: str) -> str:
        return (
            f"replace(to_char({expression} AT TIME ZONE 'UTC',"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
        )

    def latest_runs_sql(self, table: str, *, one: bool) -> str:
        # DISTINCT ON walks the (campaign, number) unique index: one row per campaign.
        return (
            f"SELECT DISTINCT ON (campaign_id) * FROM {quote(table)}"
            + (" WHERE campaign_id = %s" if one else "")
            + " ORDER BY campaign_id, number DESC"
        )

    def hold_message_writes(self, table: str) -> None:
        # Readers go on; writers of messages wait for the few seconds of the recount.
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {quote(table)} IN SHARE MODE")

    def fold_shards(self, table: str, *, key: str, value: str) -> int:
        """Sum ended backends' shards into shard 0 (rows keyed by (run_id, `key`, shard),
        summing `value`); a live backend's shard is left alone (it may be adding to it, and
        folding it could deadlock with its transaction)."""
        quoted = quote(table)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"WITH moved AS (DELETE FROM {quoted} WHERE shard <> 0"
                " AND shard NOT IN (SELECT pid FROM pg_stat_activity)"
                f" RETURNING run_id, {key}, {value})"
                f" INSERT INTO {quoted} (run_id, {key}, shard, {value})"
                f" SELECT run_id, {key}, 0, sum({value}) FROM moved GROUP BY run_id, {key}"
                f" ORDER BY run_id, {key}"
                f" ON CONFLICT (run_id, {key}, shard)"
                f" DO UPDATE SET {value} = {quoted}.{value} + EXCLUDED.{value}"
            )
            folded = max(cursor.rowcount, 0)
            cursor.execute(f"DELETE FROM {quoted} WHERE shard = 0 AND {value} = 0")
        return folded

    def minute_sql(self, column: str) -> str:
        return f"date_trunc('minute', {column})"

    def partitions(self) -> list[partitions.Partition]:
        return partitions.partitions()
