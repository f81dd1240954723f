"""Applying chunks and keeping the books. Each chunk is applied with a ClientImportChunk record
in one transaction (all of it or none); the ledger merges the records in chunk order into the
import row (counts, report, `committed_line` of the unbroken prefix), so two writers may commit
out of order and a resume rebuilds the same report from the records."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from api.domain.client_import import ImportReport
from api.models import ClientImport, ClientImportChunk, ImportMode

from . import load
from .chunks import Chunk


class Ledger:
    def __init__(self, job: ClientImport, progress: Callable | None = None):
        self.job, self.progress = job, progress
        self.report = ImportReport(settings.IMPORT_REPORT_MAX_ROWS)
        self.pending = {record.number: record for record in job.chunks.all()}
        self.committed = set(self.pending)
        self.next_number, self.probe = 1, True
        job.rows_done = job.committed_line = 0
        self._merge()

    def add(self, record: ClientImportChunk) -> None:
        """A chunk just committed: merge what is now an unbroken prefix, save the import row."""
        self.committed.add(record.number)
        self.pending[record.number] = record
        # Probe for unchanged rows while most rows are unchanged (measured on 1M clients: it
        # costs a new row +28 %, saves an unchanged one a lock, i.e. a write).
        counts = record.counts
        written = sum(counts.get(k, 0) for k in ("created", "updated", "restored", "exists"))
        self.probe = counts.get("unchanged", 0) >= written
        self._merge()
        if self.progress:
            self.progress(self.job)

    def _merge(self) -> None:
        while record := self.pending.pop(self.next_number, None):
            for outcome, number in record.counts.items():
                self.report.count(outcome, number)
            for line, field_name, reason in record.notes:
                self.report.note(line, field_name, reason)
            self.job.rows_done += record.rows_read
            self.job.committed_line = record.last_line
            self.next_number += 1
        self.job.counts, self.job.report = self.report.counts, self.report.rows
        self.job.save(update_fields=["rows_done", "committed_line", "counts", "report"])


def apply_chunk(chunk: Chunk, *, job: ClientImport, written: list[str], probe: bool):
    """Apply one chunk and write its record, in one transaction."""
    with transaction.atomic():
        now = timezone.now()
        load.stage_chunk(chunk.clients, copy=chunk.copy)
        if job.mode == ImportMode.CREATE_ONLY:
            applied = load.create_only(columns=written, now=now)
        else:
            applied = load.upsert(columns=written, now=now, skip_unchanged=probe)
        if "opted_out" in written:
            load.sync_opt_out(now=now)
        notes = list(chunk.refusals)
        notes += [(line, "phone_number", load.EXISTS_MESSAGE) for line in applied.existing_lines]
        notes.sort(key=lambda note: note[0])
        return ClientImportChunk.objects.create(
            client_import=job,
            number=chunk.number,
            last_line=chunk.last_line,
            rows_read=chunk.read,
            counts=_chunk_counts(chunk, applied),
            notes=notes[: settings.IMPORT_REPORT_MAX_ROWS],
        )


def _chunk_counts(chunk: Chunk, applied: load.Applied) -> dict[str, int]:
    exists = len(applied.existing_lines)
    counts = {
        "created": applied.created,
        "updated": applied.updated,
        "restored": applied.restored,
        "unchanged": len(chunk.clients)
        - applied.created
        - applied.updated
        - applied.restored
        - exists,
        "invalid": chunk.invalid,
        "duplicate": chunk.duplicate,
        "exists": exists,
    }
    return {outcome: number for outcome, number in counts.items() if number}


def apply_in_order(chunks: Iterator[Chunk], ledger: Ledger, apply: Callable) -> None:
    with closing(chunks):  # an error here stops a reader thread at once
        for chunk in chunks:
            if chunk.number not in ledger.committed:  # else committed by an earlier run
                ledger.add(apply(chunk, probe=ledger.probe))


def apply_in_parallel(chunks: Iterator[Chunk], ledger: Ledger, apply: Callable) -> None:
    """IMPORT_WRITERS threads, each applying a chunk on its own connection (the database side is
    one backend, one core, per connection); the ledger takes their records in chunk order."""
    writers = max(1, settings.IMPORT_WRITERS)
    with ThreadPoolExecutor(writers, thread_name_prefix="client-import-writer") as pool:
        in_flight: deque = deque()
        with closing(chunks):
            for chunk in chunks:
                if chunk.number in ledger.committed:
                    continue
                in_flight.append(pool.submit(_on_own_connection, apply, chunk, ledger.probe))
                if len(in_flight) >= writers:
                    ledger.add(in_flight.popleft().result())
            while in_flight:
                ledger.add(in_flight.popleft().result())


def _on_own_connection(apply: Callable, chunk: Chunk, probe: bool):
    try:
        return apply(chunk, probe=probe)
    finally:
        connections.close_all()  # this thread's connection (a new one for its next chunk)
