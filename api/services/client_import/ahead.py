"""Read ahead on Postgres: the next chunks are read, checked and rendered as COPY text in a
thread while this one is written. Parsing holds the GIL, waiting on Postgres releases it, so
the two overlap on two cores (measured: see bench/README.md, "Bulk client import")."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue

from django.db import connections

from .chunks import Chunk

_END = object()
# COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(clients: list[tuple]) -> bytes:
    """The chunk's rows as COPY text (line, phone, code, tag, zone, opted_out)."""
    return "".join(
        f"{line}\t{phone}\t{code}\t{tag.translate(_COPY_ESCAPES)}\t{zone}\t{'ft'[opted]}\n"
        for line, phone, code, tag, zone, opted in clients
    ).encode()


def read_ahead(chunks: Iterator[Chunk], *, depth: int = 2) -> Iterator[Chunk]:
    """`chunks`, produced by a thread up to `depth` ahead, each with its `copy` text; an error
    in the thread is raised here. Closing this generator stops the thread."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(
        target=_produce, args=(chunks, queue, stop), name="client-import-reader", daemon=True
    )
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=1.0)
            except Empty:
                if not thread.is_alive():
                    raise RuntimeError("the import's reader thread died") from None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _produce(chunks: Iterator[Chunk], queue: Queue, stop: threading.Event) -> None:
    try:
        for chunk in chunks:
            chunk.copy = copy_text(chunk.clients)
            _put(queue, stop, chunk)
            if stop.is_set():
                return
        _put(queue, stop, _END)
    except BaseException as error:  # noqa: BLE001 - handed to the consumer, re-raised there
        _put(queue, stop, error)
    finally:
        connections.close_all()  # this thread's own connection (a stored input's parts)


def _put(queue: Queue, stop: threading.Event, item) -> None:
    """Put, waiting while the consumer is behind, giving up once it has stopped."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.2)
            return
        except Full:
            continue
