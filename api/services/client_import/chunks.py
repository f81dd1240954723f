"""Rows grouped into chunks of valid, first-seen clients, each with its own refusals. The
grouping depends only on the input and the chunk size, so a resumed import finds the same
chunks and can skip those already committed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from api.domain.client_import import DUPLICATE_MESSAGE

from .reader import Row


@dataclass
class Chunk:
    number: int
    last_line: int = 0
    read: int = 0
    # (line, phone, operator code, tag, zone, opted_out): the staging table's columns.
    clients: list[tuple] = field(default_factory=list)
    refusals: list[tuple[int, str, str]] = field(default_factory=list)  # line, field, reason
    invalid: int = 0
    duplicate: int = 0
    copy: bytes | None = None  # the clients as COPY text, when rendered ahead (ahead.py)


def chunked(rows: Iterator[Row], *, size: int) -> Iterator[Chunk]:
    """Chunks of `size` rows read (the last may be smaller). A later row with a phone already
    seen is refused as a duplicate: the first one wins."""
    # Phones as ints: ~64 bytes each in a set; the one structure that grows with the input.
    seen: set[int] = set()
    chunk = Chunk(number=1)
    for line, client, problems in rows:
        chunk.read += 1
        chunk.last_line = line
        if problems:
            chunk.invalid += 1
            chunk.refusals.extend((line, name, reason) for name, reason in problems)
        else:
            phone = int(client[0])
            if phone in seen:
                chunk.duplicate += 1
                chunk.refusals.append((line, "phone_number", DUPLICATE_MESSAGE))
            else:
                seen.add(phone)
                chunk.clients.append((line, *client))
        if chunk.read >= size:
            yield chunk
            chunk = Chunk(number=chunk.number + 1)
    if chunk.read:
        yield chunk
