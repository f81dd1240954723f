"""Rows grouped into chunks of valid, first-seen clients, each with its own refusals. The
grouping depends only on the input and the chunk size, so a resumed import finds the same
chunks and can skip those already committed."""

from __future__ import annotations

from array import array
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


class PhoneSet:
    """Phone numbers seen, as 8-byte slots of one array (open addressing, at most half full):
    16-32 bytes a phone, where a Python set of ints takes ~60-70 (measured: a million phones,
    ~20 MB against ~64 MB). The one structure of an import that grows with its input."""

    def __init__(self, expected: int = 0):
        capacity = 1 << 16
        while capacity < 2 * expected:
            capacity <<= 1
        self.slots = array("q", bytes(8 * capacity))
        self.mask = capacity - 1
        self.size = 0

    def add(self, phone: int) -> bool:
        """Add the phone (a positive int); False when it was already there."""
        slots, mask = self.slots, self.mask
        index = (phone ^ (phone >> 17)) & mask
        while held := slots[index]:
            if held == phone:
                return False
            index = (index + 1) & mask
        slots[index] = phone
        self.size += 1
        if 2 * self.size > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        held = [phone for phone in self.slots if phone]
        self.__init__(2 * len(held))
        for phone in held:
            self.add(phone)


def chunked(rows: Iterator[Row], *, size: int, expected: int = 0) -> Iterator[Chunk]:
    """Chunks of `size` rows read (the last may be smaller). A later row with a phone already
    seen is refused as a duplicate: the first one wins. `expected`: about how many rows."""
    seen = PhoneSet(expected)
    chunk = Chunk(number=1)
    for line, client, problems in rows:
        chunk.read += 1
        chunk.last_line = line
        if problems:
            chunk.invalid += 1
            chunk.refusals.extend((line, name, reason) for name, reason in problems)
        else:
            if seen.add(int(client[0])):
                chunk.clients.append((line, *client))
            else:
                chunk.duplicate += 1
                chunk.refusals.append((line, "phone_number", DUPLICATE_MESSAGE))
        if chunk.read >= size:
            yield chunk
            chunk = Chunk(number=chunk.number + 1)
    if chunk.read:
        yield chunk
