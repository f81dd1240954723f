"""Raw SQL behind one backend choice: Postgres (production: partitions, SKIP LOCKED, per-backend
counter shards) or SQLite (development: one writer, plain tables). `backend()` is the one place
the database vendor is read; planning, claims, counters, compaction and the read side ask it
instead of branching on the vendor themselves."""

from __future__ import annotations

from django.db import connection

from .postgres import PostgresBackend
from .sqlite import SqliteBackend

_BACKENDS = {"postgresql": PostgresBackend(), "sqlite": SqliteBackend()}


def backend() -> SqliteBackend:
    """The strategy for the default database (both share SqliteBackend's interface)."""
    try:
        return _BACKENDS[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"no SQL backend for {connection.vendor!r}") from None


__all__ = ["PostgresBackend", "SqliteBackend", "backend"]
