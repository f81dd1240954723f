"""A lean gateway sink for benchmarks: the wire format and nothing else.

`POST /send/<id>` with a Bearer token and a JSON body answers `200 {"code":0,"message":"OK"}`;
`GET /stats` answers the counts. Plain asyncio, so it costs the shared 2-core box as little CPU
as possible and the benchmark measures the service, not the sink (manage.py fake_gateway, the
development gateway with failure knobs, runs on aiohttp and costs ~2x more per request).

    .venv/bin/python bench/sink.py --port 9100 --token bench-token
    .venv/bin/python bench/sink.py --latency-ms 100   # a gateway that answers in 100 ms

`--latency-ms` delays every `/send` reply by that long with `asyncio.sleep`: each connection
waits on its own, so N connections keep N requests in flight (a slow gateway, not a busy one).
"""

from __future__ import annotations

import argparse
import asyncio
import json

OK = b'{"code": 0, "message": "OK"}'
OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(OK),
    OK,
)
UNAUTHORIZED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


class Sink:
    def __init__(self, token: str, latency: float = 0.0):
        self.auth = f"authorization: bearer {token}".encode()
        self.latency = latency  # seconds before each /send reply
        self.requests = 0
        self.ids: set[int] = set()
        self.duplicates = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path = lines[0].split(b" ")[:2]
                lowered = [line.lower() for line in lines[1:]]
                length = 0
                for line in lowered:
                    if line.startswith(b"content-length:"):
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                if method == b"GET" and path == b"/stats":
                    stats = json.dumps(
                        {
                            "requests": self.requests,
                            "delivered": len(self.ids),
                            "duplicates": self.duplicates,
                        }
                    ).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(stats), stats)
                    )
                elif self.auth not in lowered:
                    writer.write(UNAUTHORIZED)
                elif method == b"POST" and path.startswith(b"/send/") and body:
                    self.requests += 1
                    message_id = int(path[6:])
                    if message_id in self.ids:
                        self.duplicates += 1
                    else:
                        self.ids.add(message_id)
                    if self.latency:
                        await asyncio.sleep(self.latency)
                    writer.write(OK_REPLY)
                else:
                    writer.write(BAD_REQUEST)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(host: str, port: int, token: str, latency: float = 0.0) -> None:
    sink = Sink(token, latency)
    server = await asyncio.start_server(sink.handle, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Lean SMS gateway sink for benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--token", default="bench-token")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay each /send reply this long (other requests go on meanwhile)",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.token, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
