"""A development SMS gateway that speaks the production wire format.

`POST /send/{id}` with `{"id", "phone", "text"}` and `Authorization: Bearer <token>` answers
`200 {"code": 0, "message": "OK"}`. It remembers accepted ids, so a repeat of the same id is
acknowledged but not delivered twice (the idempotency a real gateway offers). Knobs: latency,
error rate (503), throttling (429 with Retry-After), refusals (400), accepting without answering
(a timeout), and scripted replies for tests. With a receipt log it writes one JSON line per
request (time, id, status; never the phone or the text) and, on start, reads the log back so a
restarted gateway still recognises the ids it accepted; `POST /control` changes the knobs of a
running gateway (the chaos suite, api/tests/chaos/). Run it with `python manage.py fake_gateway
--port 9000`; tests start it in a thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class GatewayConfig:
    token: str = ""
    latency_ms: float = 0.0
    error_rate: float = 0.0  # share of requests answered 503
    throttle_rate: float = 0.0  # share of requests answered 429
    retry_after: float = 1.0  # seconds, sent with 429
    accept_then_hang_rate: float = 0.0  # accept the message, then never answer
    bad_request_rate: float = 0.0  # share answered 400 (a permanent refusal)
    record: bool = True  # keep every delivered message in memory
    slow_ids: dict[int, float] = field(default_factory=dict)  # message id -> extra seconds


@dataclass
class Delivery:
    message_id: int
    phone: int
    text: str
    at: float


@dataclass
class GatewayState:
    config: GatewayConfig = field(default_factory=GatewayConfig)
    deliveries: list[Delivery] = field(default_factory=list)
    accepted_ids: set[int] = field(default_factory=set)
    requests: int = 0
    duplicates: int = 0
    request_log: list[tuple[float, int, int]] = field(default_factory=list)  # (at, id, status)
    scripted: deque = field(default_factory=deque)  # replies for the next requests
    delivered_count: int = 0


class FakeGateway:
    """The gateway app; `start_in_thread()` serves it on 127.0.0.1 for tests."""

    def __init__(self, config: GatewayConfig | None = None, *, receipt_log: str = ""):
        self.state = GatewayState(config=config or GatewayConfig())
        self.receipts = None
        if receipt_log:
            self._replay(receipt_log)
            self.receipts = open(receipt_log, "a", buffering=1)  # noqa: SIM115 - lives as long
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- scripting (tests) -----------------------------------------------------------------
    def script(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next `count` requests with `status` instead of delivering."""
        with self.lock:
            for _ in range(count):
                self.state.scripted.append((status, retry_after))

    @property
    def delivered_ids(self) -> list[int]:
        with self.lock:
            return [d.message_id for d in self.state.deliveries]

    # -- receipts (one JSON line per request) ----------------------------------------------
    def _replay(self, path: str) -> None:
        """Accepted ids of an earlier life of this gateway: a repeat is still recognised."""
        try:
            with open(path) as lines:
                for line in lines:
                    receipt = json.loads(line)
                    if receipt.get("accepted"):
                        self.state.accepted_ids.add(receipt["id"])
        except FileNotFoundError:
            return

    def _receipt(self, message_id: int, status: int | str, **extra) -> None:
        if self.receipts is not None:
            line = {"at": time.time(), "id": message_id, "status": status, **extra}
            self.receipts.write(json.dumps(line) + "\n")

    # -- HTTP ------------------------------------------------------------------------------
    def app(self, *, control: bool = False) -> web.Application:
        app = web.Application()
        app.router.add_post("/send/{message_id}", self.handle_send)
        app.router.add_get("/stats", self.handle_stats)
        if control:
            app.router.add_post("/control", self.handle_control)
        return app

    async def handle_control(self, request: web.Request) -> web.Response:
        """Change the fault knobs of a running gateway: a JSON object of GatewayConfig fields."""
        changes = await request.json()
        known = {f.name for f in dataclasses.fields(GatewayConfig)} - {"token", "slow_ids"}
        unknown = set(changes) - known
        if unknown:
            return web.json_response({"unknown": sorted(unknown)}, status=400)
        for name, value in changes.items():
            setattr(self.state.config, name, value)
        return web.json_response(dataclasses.asdict(self.state.config) | {"token": "***"})

    async def handle_stats(self, request: web.Request) -> web.Response:
        with self.lock:
            body = {
                "requests": self.state.requests,
                "delivered": self.state.delivered_count,
                "duplicates": self.state.duplicates,
            }
        return web.json_response(body)

    async def handle_send(self, request: web.Request) -> web.StreamResponse:
        config = self.state.config
        if config.token and request.headers.get("Authorization") != f"Bearer {config.token}":
            return web.json_response({"code": 401, "message": "Unauthorized"}, status=401)
        try:
            message_id = int(request.match_info["message_id"])
            payload = json.loads(await request.read())
            if not isinstance(payload, dict):
                raise ValueError("payload must be an object")
            phone, text = int(payload["phone"]), str(payload["text"])
            if int(payload["id"]) != message_id:
                raise ValueError("id in body differs from the URL")
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"code": 400, "message": f"Bad request: {exc}"}, status=400)
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if message_id in config.slow_ids:
            await asyncio.sleep(config.slow_ids[message_id])
        with self.lock:
            self.state.requests += 1
            scripted = self.state.scripted.popleft() if self.state.scripted else None
        if scripted is not None:
            status, retry_after = scripted
            return self._reply(message_id, status, retry_after)
        roll = random.random()
        if roll < config.error_rate:
            return self._reply(message_id, 503, None)
        if roll < config.error_rate + config.throttle_rate:
            return self._reply(message_id, 429, config.retry_after)
        if roll < config.error_rate + config.throttle_rate + config.bad_request_rate:
            return self._reply(message_id, 400, None)
        repeat = self._deliver(message_id, phone, text)
        if random.random() < config.accept_then_hang_rate:
            self._receipt(message_id, "hang", accepted=True, repeat=repeat, peer=request.remote)
            await asyncio.sleep(3600)
        return self._reply(message_id, 200, None, repeat=repeat, peer=request.remote)

    def _deliver(self, message_id: int, phone: int, text: str) -> bool:
        """Accept the message; True if this id was accepted before (not delivered again)."""
        with self.lock:
            if message_id in self.state.accepted_ids:
                self.state.duplicates += 1
                return True
            self.state.accepted_ids.add(message_id)
            self.state.delivered_count += 1
            if self.state.config.record:
                self.state.deliveries.append(Delivery(message_id, phone, text, time.time()))
        return False

    def _reply(
        self,
        message_id: int,
        status: int,
        retry_after: float | None,
        *,
        repeat: bool = False,
        peer: str | None = None,
    ) -> web.Response:
        if status == 200:
            self._receipt(message_id, 200, accepted=True, repeat=repeat, peer=peer)
        else:
            self._receipt(message_id, status, retry_after=retry_after)
        if self.state.config.record:
            with self.lock:
                self.state.request_log.append((time.time(), message_id, status))
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        if status == 200:
            return web.json_response({"code": 0, "message": "OK"}, headers=headers)
        return web.json_response(
            {"code": status, "message": "error"}, status=status, headers=headers
        )

    # -- running in a thread (tests) -------------------------------------------------------
    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        ready = threading.Event()

        def serve():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._runner = web.AppRunner(self.app(), access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, host, port)
            loop.run_until_complete(site.start())
            bound = site._server.sockets[0].getsockname()[1]
            self.url = f"http://{host}:{bound}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-gateway", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        """Stop serving (safe to call twice)."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
