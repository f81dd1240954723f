"""The HTTP gateway: `POST {SMS_GATEWAY_URL}/send/{id}` with `{"id", "phone", "text"}`.

aiohttp on one event loop per worker process, kept in a background thread so that one
`ClientSession` and its keep-alive pool live from batch to batch. The message id in the URL is the
gateway's idempotency key, so a resend after an unknown outcome (timeout, a cut reply) cannot
deliver twice at a gateway that deduplicates. aiohttp never re-sends a POST on its own (it
retries a broken keep-alive connection only for idempotent methods), so a request whose bytes
were written is sent again only through our backoff, counted as an attempt.

Every message gets its own outcome: whatever goes wrong while sending one (any exception, a
broken reply) is that message's retry, or its failure when our own data is at fault.

(Past ~250 lines: the one protocol client, its timeouts, cool-down and reply classification
read best together; they share the session and loop state.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from email.utils import parsedate_to_datetime

import aiohttp
from django.conf import settings

from api import metrics
from api.phones import mask_phone, scrub_phones

from .base import (
    BaseProvider,
    Outcome,
    OutgoingSms,
    ResultCallback,
    SendResult,
    provider_error,
    send_and_wait,
)
from .gateway import build_gateway_target
from .ratelimit import build_rate_limiter

logger = logging.getLogger(__name__)

TRANSIENT_STATUSES = {408, 425, 429}
MAX_DETAIL_BYTES = 64 * 1024  # of an error reply's body, for the message's last_error


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (Linux, macOS): its sockets and timers are C, which cuts
    the CPU a worker spends per gateway request by about a fifth; asyncio's elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class HttpProvider(BaseProvider):
    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        concurrency: int | None = None,
        rate_limit: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        ca_bundle: str | None = None,
    ):
        self.target = build_gateway_target(
            settings.SMS_GATEWAY_URL if url is None else url,
            settings.SMS_GATEWAY_TOKEN if token is None else token,
            ca_bundle=settings.SMS_GATEWAY_CA_BUNDLE if ca_bundle is None else ca_bundle,
        )
        self.concurrency = concurrency or settings.SMS_CONCURRENCY
        self.connect_timeout = connect_timeout or settings.SMS_CONNECT_TIMEOUT
        self.read_timeout = read_timeout or settings.SMS_READ_TIMEOUT
        self.headers = {"Content-Type": "application/json"}
        if self.target.authorization:
            self.headers["Authorization"] = self.target.authorization
        self.rate_limiter = build_rate_limiter(
            settings.SMS_RATE_LIMIT if rate_limit is None else rate_limit
        )
        self.cooldown_until = 0.0  # monotonic: the gateway said 429, hold everything until then
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        # Messages waiting for a sender; deque appends and pops are atomic across threads.
        self._backlog: deque[tuple[OutgoingSms, ResultCallback]] = deque()
        self._senders: list[asyncio.Task] = []
        self._work: asyncio.Event | None = None
        self._start_lock = threading.Lock()

    # -- event loop in a background thread -------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None or not self._thread or not self._thread.is_alive():
                loop = new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="sms-http-provider", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._session = loop, thread, None
                self._senders, self._work = [], None
            return self._loop

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # created inside the loop: it belongs to that loop
            connector = aiohttp.TCPConnector(
                limit=self.concurrency,
                keepalive_timeout=30,
                ssl=self.target.ssl_context if self.target.ssl_context else True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=self.connect_timeout + self.read_timeout,
                    sock_connect=self.connect_timeout,
                    sock_read=self.read_timeout,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "task-delay-service"},
            )
        return self._session

    def close(self) -> None:
        if self._loop is None:
            return
        if self._thread and self._thread.is_alive():
            closing = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                closing.result(timeout=5)
            except Exception:  # noqa: BLE001 - closing a pool on the way out; nothing to save
                logger.debug("closing the gateway session failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(timeout=5)
        self._loop, self._thread, self._session = None, None, None
        self._senders, self._work = [], None

    async def _shutdown(self) -> None:
        for sender in self._senders:
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -- sending --------------------------------------------------------------------------
    def send_messages(self, messages):
        return send_and_wait(self, list(messages))

    def submit(self, messages, on_result) -> None:
        """Queue the messages for the senders: `concurrency` long-lived coroutines that each
        take the next message as soon as their previous request ends (no task per message)."""
        self._backlog.extend((sms, on_result) for sms in messages)
        self._ensure_loop().call_soon_threadsafe(self._wake_senders)

    def _wake_senders(self) -> None:
        if self._work is None:
            self._work = asyncio.Event()
        if not self._senders:
            self._senders = [asyncio.ensure_future(self._sender()) for _ in range(self.concurrency)]
        self._work.set()

    async def _sender(self) -> None:
        while True:
            try:
                sms, on_result = self._backlog.popleft()
            except IndexError:
                self._work.clear()
                await self._work.wait()
                continue
            try:
                on_result(await self._send_one(sms))
            except asyncio.CancelledError:
                on_result(SendResult(sms.message_id, Outcome.RETRY, "send cancelled"))
                raise
            except Exception:  # noqa: BLE001 - a broken callback must not stop this sender
                logger.exception("result callback failed for message=%s", sms.message_id)

    def _held_back(self, sms) -> SendResult | None:
        # Re-checked right before the request (after a cool-down or the rate limiter's wait):
        # the campaign may have ended, or the lease run out, while the message waited here.
        if sms.not_after is not None and time.time() >= sms.not_after:
            return SendResult(
                sms.message_id,
                Outcome.RETRY,
                "not sent: its campaign ended or its lease ran out before the request",
                retry_after=0.0,
                attempted=False,
            )
        wait = self.cooldown_until - time.monotonic()
        if wait <= 0:
            return None
        return SendResult(
            sms.message_id,
            Outcome.RETRY,
            "gateway asked to slow down (429)",
            retry_after=wait,
            attempted=False,
        )

    async def _send_one(self, sms) -> SendResult:
        try:
            return await self._attempt(sms)
        except Exception as exc:  # noqa: BLE001 - one message's trouble stays its own
            logger.error("unexpected error sending message=%s", sms.message_id, exc_info=exc)
            return provider_error(sms, exc)

    async def _attempt(self, sms) -> SendResult:
        try:
            body = json.dumps({"id": sms.message_id, "phone": int(sms.phone), "text": sms.text})
        except (TypeError, ValueError) as exc:  # our own data: sending it again cannot help
            return SendResult(sms.message_id, Outcome.FAILED, f"invalid message: {exc}")
        session = self._get_session()
        held = self._held_back(sms)
        if held:
            return held
        await self.rate_limiter.acquire()
        held = self._held_back(sms)
        if held:
            return held
        started = time.monotonic()
        try:
            result = await self._post(session, sms, body.encode(), started)
        except TimeoutError:
            metrics.record_gateway_response("timeout", time.monotonic() - started)
            return SendResult(sms.message_id, Outcome.RETRY, "gateway timeout")
        except aiohttp.ClientConnectorCertificateError:
            metrics.record_gateway_response("connection_error", None)
            return SendResult(sms.message_id, Outcome.RETRY, "gateway TLS certificate not trusted")
        except aiohttp.ClientConnectorError as exc:
            metrics.record_gateway_response("connection_error", None)
            cause = type(exc.os_error).__name__
            return SendResult(sms.message_id, Outcome.RETRY, f"gateway unreachable: {cause}")
        except aiohttp.ClientError as exc:
            metrics.record_gateway_response("broken_reply", time.monotonic() - started)
            return SendResult(
                sms.message_id, Outcome.RETRY, f"gateway reply broken: {type(exc).__name__}"
            )
        return result

    async def _post(
        self, session: aiohttp.ClientSession, sms, body: bytes, started: float
    ) -> SendResult:
        async with session.post(
            self.target.send_url(sms.message_id),
            data=body,
            headers=self.headers,
            proxy=self.target.proxy,
            allow_redirects=False,
        ) as response:
            status = response.status
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            try:
                detail = await _read_body(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not 200 <= status < 300:
                    raise
                # The status line is the gateway's answer: it accepted the message. Sending it
                # again because the rest of the reply was lost is the double SMS we avoid.
                logger.info(
                    "gateway accepted message=%s but its reply broke off (%s)",
                    sms.message_id,
                    type(exc).__name__,
                )
                detail = b""
        metrics.record_gateway_response(status, time.monotonic() - started)
        return self._result(sms, status, retry_after, detail)

    def _result(self, sms, status: int, retry_after: float | None, body: bytes) -> SendResult:
        if 200 <= status < 300:
            return SendResult(sms.message_id, Outcome.SENT)
        detail = scrub_phones(body[:200].decode("utf-8", "replace"))
        if status >= 500 or status in TRANSIENT_STATUSES:
            if status == 429:
                wait = retry_after if retry_after is not None else 1.0
                self.cooldown_until = max(self.cooldown_until, time.monotonic() + wait)
            logger.warning(
                "gateway transient error message=%s phone=%s status=%s",
                sms.message_id,
                mask_phone(sms.phone),
                status,
            )
            return SendResult(
                sms.message_id, Outcome.RETRY, f"gateway HTTP {status}", retry_after=retry_after
            )
        logger.warning(
            "gateway refused message=%s phone=%s status=%s",
            sms.message_id,
            mask_phone(sms.phone),
            status,
        )
        return SendResult(sms.message_id, Outcome.FAILED, f"gateway HTTP {status}: {detail}")


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    """The whole reply body (however many packets it comes in), up to MAX_DETAIL_BYTES; past
    that the connection is dropped rather than read on."""
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_DETAIL_BYTES:
            break
    return b"".join(chunks)
