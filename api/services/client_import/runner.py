"""Run an import: its input's rows, validated and deduplicated in chunks, each chunk applied
with its record in one transaction (ledger.py). A run skips the committed chunks, so a killed
worker's import resumes where it stopped and a finished one is a no-op."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from api.domain.client_import import FileRefused
from api.models import ClientImport, ImportStatus
from api.phones import scrub_phones
from api.services.sql import backend

from . import load
from .ahead import read_ahead
from .chunks import chunked
from .ledger import Ledger, apply_chunk, apply_in_order, apply_in_parallel
from .reader import Row

logger = logging.getLogger(__name__)
ANALYZE_AFTER_ROWS = 100_000
OpenInput = Callable[[], tuple[tuple[str, ...], Iterator[Row]]]


def import_lock(import_id: int):
    """One runner per import (a killed worker's lock goes with its connection)."""
    return backend().imports.lock(import_id)


def run_import(
    *, import_id: int, open_input: OpenInput, progress: Callable | None = None
) -> ClientImport:
    """Apply the import's remaining chunks; safe to re-run (done: no-op; interrupted: applies
    the chunks not committed yet; busy in another worker: returns at once)."""
    with import_lock(import_id) as acquired:
        job = ClientImport.objects.get(pk=import_id)
        if not acquired or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
            return job
        job.status, job.started_at = ImportStatus.RUNNING, job.started_at or timezone.now()
        job.save(update_fields=["status", "started_at"])
        try:
            columns, rows = open_input()
        except FileRefused as refusal:
            return _finish(job, status=ImportStatus.FAILED, error=refusal.message)
        try:
            _apply_all(job, columns, rows, progress)
        except Exception as error:
            _note_error(job.pk, error)
            raise
        return _finish(job, status=ImportStatus.DONE)


def _apply_all(job: ClientImport, columns, rows, progress) -> None:
    written = load.client_columns(opted_out_given="opted_out" in columns)
    apply = partial(apply_chunk, job=job, written=written)
    ledger = Ledger(job, progress)
    chunks = chunked(rows, size=job.chunk_rows, expected=job.rows_total or 0)
    if backend().imports.parallel_writers and not connection.in_atomic_block:
        # (Inside a transaction other threads' connections could not see it: in order.)
        apply_in_parallel(read_ahead(chunks), ledger, apply)
    else:
        apply_in_order(chunks, ledger, apply)


def _note_error(import_id: int, error: Exception) -> None:
    """The import stays `running` (resumable); its `error` says why it stopped (a database
    error may quote a row: phones masked)."""
    logger.exception("client import %s stopped", import_id)
    text = scrub_phones(f"{type(error).__name__}: {error}")[:2000]
    try:
        ClientImport.objects.filter(pk=import_id).update(error=text)
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        logger.warning("client import %s: could not record its error", import_id)


def _finish(job: ClientImport, *, status: str, error: str = "") -> ClientImport:
    with transaction.atomic():
        job.status, job.error, job.finished_at = status, error, timezone.now()
        if job.rows_total is None:
            job.rows_total = job.rows_done
        job.save(update_fields=["status", "error", "finished_at", "rows_total"])
        job.parts.all().delete()
        job.chunks.all().delete()  # merged into the import row: its counts and report
    if job.rows_done >= ANALYZE_AFTER_ROWS:
        # The audience queries plan on the client table's statistics; autovacuum may be off
        # or minutes away, and a million new rows change every estimate.
        backend().imports.analyze(load.CLIENT)
    logger.info("client import %s %s: %s", job.pk, status, job.counts)
    return job
