"""Bulk client import (issue 13): a CSV file or a JSON array of clients, upserted by phone in
chunks. Entry points for the API, the task, the admin and `manage.py import_clients`."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

import orjson
from django.conf import settings
from django.db import transaction

from api.domain.client_import import COLUMNS
from api.domain.errors import InvalidInput
from api.models import ClientImport, ImportMode, ImportStatus

from .reader import csv_rows, json_rows
from .runner import run_import
from .store import store_input, stored_input

__all__ = [
    "create_import",
    "import_csv_now",
    "import_json_now",
    "store_json",
    "run_import",
    "run_stored_import",
]


def check_mode(mode: str | None) -> str:
    if mode in (None, ""):
        return ImportMode.UPSERT
    if mode not in ImportMode.values:
        raise InvalidInput(f"Must be one of: {', '.join(ImportMode.values)}.", field="mode")
    return mode


def create_import(
    *, source: str, mode: str | None, file_name: str = "", stream: BinaryIO | None = None
) -> ClientImport:
    """A new pending import; with `stream`, its input stored for a worker (not idempotent:
    each call is a new import)."""
    with transaction.atomic():
        job = ClientImport.objects.create(
            source=source,
            mode=check_mode(mode),
            file_name=file_name[:255],
            chunk_rows=settings.IMPORT_CHUNK_ROWS,
        )
        if stream is not None:
            store_input(client_import=job, stream=stream)
    return job


def run_stored_import(*, import_id: int, progress: Callable | None = None) -> ClientImport:
    """Run (or resume) an import whose input is stored; a re-run is safe."""
    source = ClientImport.objects.values_list("source", flat=True).get(pk=import_id)

    def open_input():
        if source == "json":  # bounded by IMPORT_BULK_MAX_BYTES, as the request was
            return json_input(orjson.loads(stored_input(import_id).read()))
        return csv_rows(stored_input(import_id))

    return run_import(import_id=import_id, open_input=open_input, progress=progress)


def import_csv_now(
    *, stream: BinaryIO, mode: str | None, source: str = "csv", file_name: str = "", progress=None
) -> ClientImport:
    """Import a CSV stream in this process (the caller's own stream, not stored)."""
    job = create_import(source=source, mode=mode, file_name=file_name)
    return run_import(import_id=job.pk, open_input=lambda: csv_rows(stream), progress=progress)


def import_json_now(*, items: list, mode: str | None) -> ClientImport:
    """Import a JSON array of client objects in this process."""
    job = create_import(source="json", mode=mode)
    job.rows_total = len(items)
    job.save(update_fields=["rows_total"])
    return run_import(import_id=job.pk, open_input=lambda: json_input(items))


def json_input(items: list):
    given = any(isinstance(item, dict) and "opted_out" in item for item in items)
    return (COLUMNS if given else COLUMNS[:4]), json_rows(items)


def store_json(*, items: list, mode: str | None) -> ClientImport:
    """A pending import of a JSON array, stored for a worker."""
    job = create_import(source="json", mode=mode, stream=io.BytesIO(orjson.dumps(items)))
    job.rows_total = len(items)
    job.save(update_fields=["rows_total"])
    return job


ImportStatus = ImportStatus  # re-exported for views and tasks
