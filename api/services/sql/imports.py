"""The bulk client import's dialect differences (api/services/client_import/), one class per
database: how a chunk is staged (COPY on Postgres), how an upsert's created/updated rows are
counted, the per-import lock, and how an upload's binary parts are stored. Reached through
`backend().imports`, the project's one vendor choice (api/services/sql/__init__.py)."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
from django.db import connection

LOCK_CLASS = 13  # pg advisory lock namespace of client imports: (13, import id)
STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS {table} (line bigint, phone_number varchar(11),"
    " mobile_operator_code varchar(3), tag varchar(64), timezone varchar(64), opted_out boolean)"
)


class SqliteImports:
    # One writer at a time: chunks are applied in order by the calling thread.
    parallel_writers = False

    def stage(self, cursor, *, table: str, columns: tuple[str, ...], clients, copy) -> None:
        """An empty staging table `table` holding the chunk's clients (`copy`: COPY text,
        used where the database takes it)."""
        cursor.execute(STAGE_DDL.format(table=table))
        cursor.execute(f"DELETE FROM {table}")
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", clients)

    def changed_rows(self, cursor) -> int:
        """Rows the last statement changed: sqlite3's rowcount is -1 after a WITH statement."""
        cursor.execute("SELECT changes()")
        return cursor.fetchone()[0]

    def phone_order(self, expression: str) -> str:
        return expression

    def upsert_counts(self, cursor, *, insert: str, classify: str, params) -> tuple[int, int]:
        """Run the INSERT ... ON CONFLICT; (created, updated). No xmax here: `classify` counts
        them first (one writer, nothing changes in between)."""
        cursor.execute(classify)
        created, updated = cursor.fetchone()
        cursor.execute(insert, params)
        return created, updated

    @contextmanager
    def lock(self, import_id: int):
        yield True  # one writer at a time anyway

    def analyze(self, table: str) -> None:
        pass  # SQLite plans without statistics worth refreshing here

    def save_part(self, model, **fields) -> None:
        model.objects.create(**fields)

    def load_part(self, model, *, import_id: int, number: int) -> bytes | None:
        parts = model.objects.filter(client_import_id=import_id, number=number)
        data = parts.values_list("data", flat=True).first()
        return None if data is None else bytes(data)


class PostgresImports(SqliteImports):
    # Two writer connections apply alternate chunks while a thread reads ahead (ledger.py).
    parallel_writers = True

    def stage(self, cursor, *, table: str, columns: tuple[str, ...], clients, copy) -> None:
        # A crash may lose the last commits, but a chunk and its import row's record of it are
        # one transaction: they are lost together and the resume redoes that chunk.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(STAGE_DDL.format(table=table) + " ON COMMIT DELETE ROWS")
        # Empty already after a commit, but not when the chunk's transaction is a savepoint.
        cursor.execute(f"TRUNCATE {table}")
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as stream:
            if copy is not None:
                stream.write(copy)
            else:
                for client in clients:
                    stream.write_row(client)

    def changed_rows(self, cursor) -> int:
        return cursor.rowcount

    def phone_order(self, expression: str) -> str:
        # COLLATE "C": digits sort the same, without the locale's comparisons.
        return f'{expression} COLLATE "C"'

    def upsert_counts(self, cursor, *, insert: str, classify: str, params) -> tuple[int, int]:
        cursor.execute(
            f"WITH written AS ({insert} RETURNING xmax = 0 AS created) SELECT"
            " count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created)"
            " FROM written",
            params,
        )
        return cursor.fetchone()

    @contextmanager
    def lock(self, import_id: int):
        """One runner per import. A session lock: a killed worker's goes with its connection."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, import_id])
            (acquired,) = cursor.fetchone()
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, import_id])

    def analyze(self, table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")

    # The parts travel as binary parameters and results: Django's client-side binding would
    # spell each MiB as 2 MiB of hex for the server to parse (measured: 2.3 s for 33 MB).
    def save_part(self, model, **fields) -> None:
        connection.ensure_connection()
        names = ", ".join(fields)
        marks = ", ".join("%b" if name == "data" else "%s" for name in fields)
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f"INSERT INTO {model._meta.db_table} ({names}) VALUES ({marks})",
                list(fields.values()),
            )

    def load_part(self, model, *, import_id: int, number: int) -> bytes | None:
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f"SELECT data FROM {model._meta.db_table}"
                " WHERE client_import_id = %s AND number = %s",
                [import_id, number],
                binary=True,
            )
            row = cursor.fetchone()
        return None if row is None else bytes(row[0])
