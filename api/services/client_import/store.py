"""An uploaded input kept in the database until its import is done: any worker can run (or
resume) it, on whatever machine, after whatever restart."""

from __future__ import annotations

import io
from typing import BinaryIO

from api.models import ClientImport, ClientImportPart
from api.services.sql import backend

PART_BYTES = 1024 * 1024


def store_input(*, client_import: ClientImport, stream: BinaryIO) -> None:
    """Save the stream as parts (read a part at a time) and its size and row count."""
    size = newlines = 0
    last = b"\n"
    number = 0
    while data := stream.read(PART_BYTES):
        number += 1
        _save_part(client_import.pk, number, data)
        size += len(data)
        newlines += data.count(b"\n")
        last = data[-1:]
    lines = newlines + (last != b"\n")
    client_import.file_size = size
    client_import.rows_total = max(lines - 1, 0)  # less the header
    client_import.save(update_fields=["file_size", "rows_total"])


def _save_part(import_id: int, number: int, data: bytes) -> None:
    backend().imports.save_part(
        ClientImportPart, client_import_id=import_id, number=number, data=data
    )


def _load_part(import_id: int, number: int) -> bytes | None:
    return backend().imports.load_part(ClientImportPart, import_id=import_id, number=number)


class _Parts(io.RawIOBase):
    def __init__(self, import_id: int):
        self.import_id = import_id
        self.number = 0
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.pending:
            self.number += 1
            data = _load_part(self.import_id, self.number)
            if data is None:
                return 0
            self.pending = memoryview(data)
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def stored_input(import_id: int) -> BinaryIO:
    """The stored input as one byte stream, a part in memory at a time."""
    return io.BufferedReader(_Parts(import_id), buffer_size=256 * 1024)
