"""One chunk into the client table, set-based: the chunk's clients go into a staging table
(COPY on Postgres), then one statement restores soft-deleted clients and one
`INSERT ... ON CONFLICT` creates or updates the rest. The caller holds the transaction: a
chunk is applied whole or not at all. A row equal to its client is not written (a re-run of
the same input writes nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from api.domain.errors import DuplicatePhone
from api.models import Client
from api.services.sql import backend

STAGE = "client_import_rows"
STAGE_COLUMNS = ("line", "phone_number", "mobile_operator_code", "tag", "timezone", "opted_out")
CLIENT = Client._meta.db_table
EXISTS_MESSAGE = DuplicatePhone().message


@dataclass
class Applied:
    created: int = 0
    updated: int = 0
    restored: int = 0
    existing_lines: tuple[int, ...] = ()  # create-only: rows whose phone is taken


def client_columns(*, opted_out_given: bool) -> list[str]:
    """The client fields an import writes (opted_out only when the file gives it)."""
    columns = ["mobile_operator_code", "tag", "timezone"]
    return columns + ["opted_out"] if opted_out_given else columns


def stage_chunk(clients: list[tuple], *, copy: bytes | None = None) -> None:
    """The chunk's clients into the staging table (`copy`: already rendered as COPY text)."""
    with connection.cursor() as cursor:
        backend().imports.stage(
            cursor, table=STAGE, columns=STAGE_COLUMNS, clients=clients, copy=copy
        )


def restore_deleted(*, columns: list[str], now) -> int:
    """Soft-deleted clients whose phone has no active client come back (the latest of them),
    with the row's values; their id and message history are kept."""
    assignments = ", ".join(f"{name} = s.{name}" for name in columns)
    # MATERIALIZED: the few deleted matches first, then the anti-join on them; left to itself
    # the planner anti-joined the chunk against every active client (a scan per chunk).
    sql = f"""
        WITH deleted AS MATERIALIZED (
            SELECT max(d.id) AS id, d.phone_number FROM {CLIENT} d
            JOIN {STAGE} s ON s.phone_number = d.phone_number
            WHERE d.deleted_at IS NOT NULL GROUP BY d.phone_number)
        UPDATE {CLIENT} SET deleted_at = NULL, updated_at = %(now)s, {assignments}
        FROM deleted t JOIN {STAGE} s ON s.phone_number = t.phone_number
        WHERE {CLIENT}.id = t.id AND NOT EXISTS (
            SELECT 1 FROM {CLIENT} a WHERE a.phone_number = t.phone_number
            AND a.deleted_at IS NULL)"""
    with connection.cursor() as cursor:
        # Most imports meet no deleted client: one probe of the (small) partial index.
        # ORDER BY: the partial index answers; without it the planner chose a scan of the
        # whole table (no deleted row to stop at) when the table had no statistics yet.
        cursor.execute(
            f"SELECT 1 FROM {CLIENT} WHERE deleted_at IS NOT NULL ORDER BY phone_number LIMIT 1"
        )
        if cursor.fetchone() is None:
            return 0
        cursor.execute(sql, {"now": now})
        return backend().imports.changed_rows(cursor)


def _insert_sql(*, columns: list[str], on_conflict: str, skip_unchanged: bool = False) -> str:
    inserted = ["phone_number", *columns, "created_at", "updated_at", "deleted_at"]
    extra = [] if "opted_out" in columns else ["opted_out"]  # a new client: not opted out
    values = ["s.phone_number", *(f"s.{name}" for name in columns), "%(now)s", "%(now)s", "NULL"]
    values += ["false"] * len(extra)
    # WHERE true: SQLite needs a WHERE to tell the SELECT from the ON CONFLICT clause.
    where = f"NOT {_unchanged_client(columns)}" if skip_unchanged else "true"
    # Sorted by phone: the unique index is filled in order.
    order = backend().imports.phone_order("s.phone_number")
    return (
        f"INSERT INTO {CLIENT} AS c ({', '.join(inserted + extra)}) "
        f"SELECT {', '.join(values)} FROM {STAGE} s WHERE {where} ORDER BY {order} "
        f"ON CONFLICT (phone_number) WHERE deleted_at IS NULL {on_conflict}"
    )


def _unchanged_client(columns: list[str]) -> str:
    """True when an active client already has the row's values. A scalar subquery with LIMIT
    is one index probe per row, never flattened into a join (the planner may hash-join the
    chunk against the whole table); and it reads without locking, where ON CONFLICT DO UPDATE
    locks (writes) every conflicting row even when its WHERE then skips it."""
    same = " AND ".join(f"a.{name} = s.{name}" for name in columns)
    return (
        f"COALESCE((SELECT true FROM {CLIENT} a WHERE a.phone_number = s.phone_number"
        f" AND a.deleted_at IS NULL AND {same} LIMIT 1), false)"
    )


def _changed(columns: list[str], old: str, new: str) -> str:
    return " OR ".join(f"{old}.{name} <> {new}.{name}" for name in columns)


def upsert(*, columns: list[str], now, skip_unchanged: bool = True) -> Applied:
    """Create new phones, update active clients whose values differ; counts of each.
    `skip_unchanged`: probe first for rows equal to their client (the same result either way;
    worth it when most rows are unchanged, a wasted probe per row when they are new)."""
    restored = restore_deleted(columns=columns, now=now)
    update = (
        "DO UPDATE SET updated_at = EXCLUDED.updated_at, "
        + ", ".join(f"{name} = EXCLUDED.{name}" for name in columns)
        + f" WHERE {_changed(columns, 'c', 'EXCLUDED')}"  # a change made since the probe
    )
    insert = _insert_sql(columns=columns, on_conflict=update, skip_unchanged=skip_unchanged)
    classify = (
        f"SELECT count(*) FILTER (WHERE a.id IS NULL), count(*) FILTER (WHERE"
        f" a.id IS NOT NULL AND ({_changed(columns, 'a', 's')})) FROM {STAGE} s"
        f" LEFT JOIN {CLIENT} a ON a.phone_number = s.phone_number AND a.deleted_at IS NULL"
    )
    with connection.cursor() as cursor:
        created, updated = backend().imports.upsert_counts(
            cursor, insert=insert, classify=classify, params={"now": now}
        )
    return Applied(created=created, updated=updated, restored=restored)


def create_only(*, columns: list[str], now) -> Applied:
    """Create new phones; a phone an active client has is reported, not touched."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.line FROM {STAGE} s JOIN {CLIENT} a ON a.phone_number = s.phone_number"
            " AND a.deleted_at IS NULL ORDER BY s.line"
        )
        existing = tuple(line for (line,) in cursor.fetchall())
        cursor.execute(_insert_sql(columns=columns, on_conflict="DO NOTHING"), {"now": now})
        return Applied(created=cursor.rowcount, existing_lines=existing)


def sync_opt_out(*, now) -> int:
    """After a chunk that gives `opted_out`: what api.services.opt_out.set_opted_out does for
    a flag it flips — stamp (or clear) opted_out_at and cancel the newly opted-out clients'
    unsent messages — for the chunk's clients, set-based; how many were opted out."""
    from api.services.clients import cancel_unsent_messages
    from api.services.opt_out import OPTED_OUT_ERROR

    chunk = f"SELECT phone_number FROM {STAGE} WHERE opted_out"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CLIENT} SET opted_out_at = %(now)s WHERE deleted_at IS NULL AND opted_out"
            f" AND opted_out_at IS NULL AND phone_number IN ({chunk}) RETURNING id",
            {"now": now},
        )
        newly = [client_id for (client_id,) in cursor.fetchall()]
        cursor.execute(
            f"UPDATE {CLIENT} SET opted_out_at = NULL WHERE deleted_at IS NULL AND NOT opted_out"
            f" AND opted_out_at IS NOT NULL AND phone_number IN"
            f" (SELECT phone_number FROM {STAGE} WHERE NOT opted_out)"
        )
    if newly:
        cancel_unsent_messages(client_ids=newly, reason=OPTED_OUT_ERROR)
    return len(newly)
