"""Run an import: its input's rows, validated and deduplicated in chunks, each chunk applied
and recorded on the import row in one transaction. A run picks up after the last committed
chunk, so a killed worker's import resumes where it stopped and a finished one is a no-op."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from api.domain.client_import import FileRefused, ImportReport
from api.models import ClientImport, ImportMode, ImportStatus

from . import load
from .ahead import read_ahead
from .chunks import Chunk, chunked
from .reader import Row

logger = logging.getLogger(__name__)
LOCK_CLASS = 13  # pg advisory lock namespace of client imports: (13, import id)
ANALYZE_AFTER_ROWS = 100_000
OpenInput = Callable[[], tuple[tuple[str, ...], Iterator[Row]]]


@contextmanager
def import_lock(import_id: int):
    """One runner per import. A session lock: a killed worker's lock goes with its connection."""
    if connection.vendor != "postgresql":
        yield True  # SQLite: one writer at a time anyway
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, import_id])
        (acquired,) = cursor.fetchone()
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, import_id])


def run_import(
    *, import_id: int, open_input: OpenInput, progress: Callable | None = None
) -> ClientImport:
    """Apply the import's remaining chunks; safe to re-run (done: no-op; interrupted: resumes
    after `committed_line`; busy in another worker: returns at once)."""
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
        report = ImportReport(settings.IMPORT_REPORT_MAX_ROWS, dict(job.counts), list(job.report))
        written = load.client_columns(opted_out_given="opted_out" in columns)
        chunks = chunked(rows, size=job.chunk_rows, expected=job.rows_total or 0)
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            chunks = read_ahead(chunks)  # (inside a transaction: the thread could not see it)
        probe = True  # for unchanged rows, until a chunk shows that most rows are not
        with closing(chunks):  # an error here stops the reader thread at once
            for chunk in chunks:
                if chunk.last_line <= job.committed_line:
                    continue  # committed by an earlier run (read again only for its phones)
                probe = _apply_chunk(job, chunk, report, written, probe=probe)
                if progress:
                    progress(job)
        return _finish(job, status=ImportStatus.DONE)


def _apply_chunk(job: ClientImport, chunk: Chunk, report: ImportReport, written, probe) -> bool:
    """Apply and record one chunk; returns whether the next chunk should probe for unchanged
    rows (measured on 1M clients: the probe costs a new row +28 %, saves an unchanged one a
    lock, i.e. a write)."""
    counts_before, rows_before = dict(report.counts), list(report.rows)
    try:
        with transaction.atomic():
            now = timezone.now()
            load.stage_chunk(chunk.clients, copy=chunk.copy)
            if job.mode == ImportMode.CREATE_ONLY:
                applied = load.create_only(columns=written, now=now)
            else:
                applied = load.upsert(columns=written, now=now, skip_unchanged=probe)
            unchanged = _record(report, chunk, applied)
            job.committed_line = chunk.last_line
            job.rows_done += chunk.read
            job.counts, job.report = report.counts, report.rows
            job.save(update_fields=["committed_line", "rows_done", "counts", "report"])
    except BaseException:
        report.counts, report.rows = counts_before, rows_before
        raise
    logger.info(
        "client import %s: chunk %s committed through line %s",
        job.pk,
        chunk.number,
        chunk.last_line,
    )
    return 2 * unchanged >= len(chunk.clients)


def _record(report: ImportReport, chunk: Chunk, applied: load.Applied) -> int:
    exists = len(applied.existing_lines)
    unchanged = len(chunk.clients) - applied.created - applied.updated - applied.restored - exists
    for outcome, number in (
        ("created", applied.created),
        ("updated", applied.updated),
        ("restored", applied.restored),
        ("unchanged", unchanged),
        ("invalid", chunk.invalid),
        ("duplicate", chunk.duplicate),
        ("exists", exists),
    ):
        report.count(outcome, number)
    notes = list(chunk.refusals)
    notes += [(line, "phone_number", load.EXISTS_MESSAGE) for line in applied.existing_lines]
    for line, field_name, reason in sorted(notes, key=lambda note: note[0]):
        report.note(line, field_name, reason)
    return unchanged


def _finish(job: ClientImport, *, status: str, error: str = "") -> ClientImport:
    with transaction.atomic():
        job.status, job.error, job.finished_at = status, error, timezone.now()
        if job.rows_total is None:
            job.rows_total = job.rows_done
        job.save(update_fields=["status", "error", "finished_at", "rows_total"])
        job.parts.all().delete()
    if connection.vendor == "postgresql" and job.rows_done >= ANALYZE_AFTER_ROWS:
        # The audience queries plan on the client table's statistics; autovacuum may be off
        # or minutes away, and a million new rows change every estimate.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {load.CLIENT}")
    logger.info("client import %s %s: %s", job.pk, status, job.counts)
    return job
