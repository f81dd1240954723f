"""Bulk client import (issue 13): a CSV file or a JSON array of clients, upserted by phone in
chunks. Entry points for the API, the task, the admin and `manage.py import_clients`."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import BinaryIO

import orjson
from django.conf import settings
from django.db import transaction

from api.domain.client_import import COLUMNS, FileRefused
from api.domain.errors import InvalidInput
from api.models import ClientImport, ImportMode, ImportStatus

from .reader import csv_rows, json_rows
from .runner import run_import
from .store import store_input, stored_input

__all__ = [
    "accept_csv_upload",
    "create_import",
    "import_csv_now",
    "import_csv_path",
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


def accept_csv_upload(
    *, stream: BinaryIO, size: int, mode: str | None, file_name: str = "", source: str = "csv"
) -> tuple[ClientImport, bool]:
    """An uploaded CSV: imported now when small (IMPORT_SYNC_MAX_BYTES), else stored for a
    worker (the caller enqueues it on commit). Returns (import, stored). FileRefused for an
    empty upload or an unusable header: nothing is written then."""
    if not size:
        raise FileRefused("The upload is empty (0 bytes).")
    mode = check_mode(mode)
    csv_rows(stream)  # the header's refusals now, not as a failed import later
    stream.seek(0)
    if size <= settings.IMPORT_SYNC_MAX_BYTES:
        job = import_csv_now(stream=stream, mode=mode, file_name=file_name, source=source)
        return job, False
    return create_import(source=source, mode=mode, file_name=file_name, stream=stream), True


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


def import_csv_path(
    *, path: str, mode: str | None, resume: int | None = None, progress=None
) -> ClientImport:
    """Import a local CSV file in this process (`manage.py import_clients`). `resume`: the id of
    an earlier, interrupted import of the same file, continued after its last committed chunk."""
    if resume is None:
        size, rows = os.path.getsize(path), count_rows(path)  # a missing file: no import row
        job = create_import(source="command", mode=mode, file_name=os.path.abspath(path))
        job.file_size, job.rows_total = size, rows
        job.save(update_fields=["file_size", "rows_total"])
    else:
        job = ClientImport.objects.filter(pk=resume).first()
        if job is None:
            raise InvalidInput(f"No import {resume}.", field="resume")
    with open(path, "rb") as stream:
        return run_import(import_id=job.pk, open_input=lambda: csv_rows(stream), progress=progress)


def count_rows(path: str) -> int:
    """Data lines of a CSV file (its newlines, less the header), read a block at a time."""
    newlines, last = 0, b"\n"
    with open(path, "rb") as stream:
        while block := stream.read(1024 * 1024):
            newlines, last = newlines + block.count(b"\n"), block[-1:]
    return max(newlines + (last != b"\n") - 1, 0)


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
