"""A lean HTTP/1.1 keep-alive client on asyncio streams, for one gateway host.

Why not aiohttp: measured on this 2-core box against the same local sink, aiohttp's client
spends ~400 us of CPU per request, this one ~120 us, and at thousands of messages per second the
client's CPU is what the worker runs out of (see bench/README.md). It does what a gateway call
needs and nothing more: POST with a body, keep-alive reuse, http and https, Content-Length,
chunked and close-delimited replies, connect and read timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class GatewayProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as expected."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


class _Connection:
    __slots__ = ("reader", "writer", "used")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.used = reader, writer, False

    def close(self) -> None:
        # Closing a broken socket may fail; there is nothing more to do with it.
        with contextlib.suppress(Exception):
            self.writer.close()


class HostConnectionPool:
    """Up to `size` keep-alive connections to one host.

    Callers hold one of `slots` around each `post()`; that bounds the open connections and lets
    a caller decide at the last moment (holding its slot) whether to send at all.
    """

    def __init__(self, base_url: str, *, size: int, connect_timeout: float, read_timeout: float):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported gateway URL scheme: {parts.scheme!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.base_path = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(size)

    async def _open(self) -> _Connection:
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl, limit=MAX_HEADER_BYTES
            )
        return _Connection(reader, writer)

    async def post(self, path: str, body: bytes, headers: bytes = b"") -> Reply:
        """POST `body` to base_path + path. `headers` are extra raw lines, each ending CRLF."""
        request = b"".join(
            [
                b"POST %s%s HTTP/1.1\r\nHost: %s\r\n"
                % (
                    self.base_path.encode(),
                    path.encode(),
                    self.host_header.encode(),
                ),
                headers,
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            ]
        )
        connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return await self._exchange(connection, request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                # A reused connection the server had already closed: the request never
                # reached it (no reply byte), so one retry on a fresh connection is safe —
                # and the message id makes a repeat harmless at the gateway anyway.
                if getattr(exc, "partial", b""):
                    raise
        return await self._exchange(await self._open(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> Reply:
        keep = False
        try:
            connection.writer.write(request)
            async with asyncio.timeout(self.read_timeout):
                await connection.writer.drain()
                reply, keep = await self._read_reply(connection.reader)
            return reply
        finally:
            if keep:
                connection.used = True
                self._idle.append(connection)
            else:
                connection.close()

    async def _read_reply(self, reader: asyncio.StreamReader) -> tuple[Reply, bool]:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise GatewayProtocolError("reply headers too large") from exc
            lines = head.decode("latin-1").split("\r\n")
            status_line = lines[0].split(" ", 2)
            if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
                raise GatewayProtocolError(f"not an HTTP reply: {lines[0][:40]!r}")
            status = int(status_line[1])
            if status >= 200 or status == 101:
                break  # 1xx interim replies are skipped
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep = status_line[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY_BYTES:
                raise GatewayProtocolError("reply body too large")
            body = await reader.readexactly(length)
        else:
            body = await reader.read(MAX_BODY_BYTES)  # delimited by the server closing
            keep = False
        return Reply(status, headers, body), keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts, total = [], 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise GatewayProtocolError("reply body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
