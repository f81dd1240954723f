"""A raw HTTP/1.1 server that misbehaves on purpose, for testing the gateway client.

Each request is answered by the next scripted reply: a list of steps, where bytes are written
(and flushed, one packet each), a number sleeps that many seconds, and CLOSE drops the
connection. A connection that is not dropped serves the next request (keep-alive). Every request
is recorded with its message id, so a test can count what the gateway received per message.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections import Counter, deque
from dataclasses import dataclass

CLOSE = object()
OK_BODY = b'{"code": 0, "message": "OK"}'


def ok(extra_headers: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra_headers
        + b"Content-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY)
    )


@dataclass
class Received:
    connection: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> int | None:
        found = re.search(r"/send/(\d+)", self.target)
        return int(found.group(1)) if found else None


class MisbehavingGateway:
    def __init__(self, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None):
        self.host = host
        self.ssl_context = ssl_context
        self.replies: deque[list] = deque()
        self.default_reply: list = [ok()]
        self.replies_for: dict[int, list] = {}  # by message id, before the scripted queue
        self.received: list[Received] = []
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def script(self, *replies: list) -> None:
        self.replies.extend(replies)

    def count_per_id(self) -> Counter:
        return Counter(r.message_id for r in self.received)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(number, method, target, headers, body)
                self.received.append(received)
                steps = self.replies_for.get(received.message_id)
                if steps is None:
                    steps = self.replies.popleft() if self.replies else self.default_reply
                for step in steps:
                    if step is CLOSE:
                        return
                    if isinstance(step, int | float):
                        await asyncio.sleep(step)
                    else:
                        writer.write(step)
                        await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def start(self) -> MisbehavingGateway:
        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0, ssl=self.ssl_context)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="misbehaving-gateway", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown():
            self._server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for handler in handlers:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None


class ConnectProxy:
    """A minimal HTTPS forward proxy: answers CONNECT host:port and pipes the bytes both ways."""

    def __init__(self):
        self.tunnels: list[str] = []
        self.port = 0
        self._gateway = MisbehavingGateway()  # only for its thread/loop plumbing

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.decode("latin-1").split("\r\n")[0].split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()

            async def pipe(source, sink):
                try:
                    while data := await source.read(65536):
                        sink.write(data)
                        await sink.drain()
                finally:
                    sink.close()

            await asyncio.gather(
                pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start(self) -> ConnectProxy:
        plumbing = self._gateway
        plumbing._handle = self._handle
        plumbing.start()
        self.port = plumbing.port
        return self

    def stop(self) -> None:
        self._gateway.stop()
