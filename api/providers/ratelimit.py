"""Messages-per-second limits for a gateway, local to a process or shared through Redis.

Shared limiting uses fixed windows keyed by the window number: every worker on every host
INCRBYs the same key, so together they never pass the limit within a window. Permits are taken
in small blocks to keep Redis round trips far below one per message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from django.conf import settings

logger = logging.getLogger(__name__)


class NoRateLimit:
    async def acquire(self) -> None:
        return None


class WindowRateLimiter:
    """At most rate x window permits per window. Windows are 100 ms from 10/s up (so a burst
    across a window boundary stays within a tenth of a second's worth), 1 s from 1/s, and
    1/rate below that."""

    def __init__(self, rate: float):
        self.rate = rate
        self.window_seconds = 0.1 if rate >= 10 else 1.0 if rate >= 1 else 1.0 / rate
        self.per_window = max(1, math.ceil(rate * self.window_seconds))
        self._window = -1
        self._permits = 0  # taken for this process and not used yet
        self._window_closed = False  # nothing more to take in this window
        self._lock: asyncio.Lock | None = None

    def _current_window(self) -> tuple[int, float]:
        now = time.time()
        window = int(now // self.window_seconds)
        return window, (window + 1) * self.window_seconds - now

    def permits_in(self, window: int) -> int:
        """Permits of one window; fractions carry over, so 15/s in 100 ms windows is 1, 2, 1,
        2, ... and the average is exact."""
        share = self.rate * self.window_seconds
        return math.floor(share * (window + 1)) - math.floor(share * window)

    async def _take_block(self, window: int) -> tuple[int, bool]:
        """(permits granted to this process in `window`, whether the window is now used up)."""
        return self.permits_in(window), True

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        while True:
            async with self._lock:
                window, remaining = self._current_window()
                if window != self._window:
                    self._window, self._permits, self._window_closed = window, 0, False
                if self._permits == 0 and not self._window_closed:
                    self._permits, self._window_closed = await self._take_block(window)
                if self._permits > 0:
                    self._permits -= 1
                    return
            await asyncio.sleep(remaining)


class RedisWindowRateLimiter(WindowRateLimiter):
    def __init__(self, rate: float, url: str, key: str = "tds:sms-rate"):
        super().__init__(rate)
        self.url = url
        self.key = key
        self.block = max(1, min(50, self.per_window // 20))
        self._client = None
        self._fallback_logged = False

    async def _take_block(self, window: int) -> tuple[int, bool]:
        import redis.asyncio as redis_asyncio

        try:
            if self._client is None:
                self._client = redis_asyncio.from_url(self.url, socket_timeout=2)
            key = f"{self.key}:{window}"
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(key, self.block)
                pipe.expire(key, int(self.window_seconds) + 5)  # whole seconds, at least 5
                total, _ = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis down must not stop sending
            if not self._fallback_logged:
                logger.warning("shared rate limiter unavailable (%s); limiting locally", exc)
                self._fallback_logged = True
            self._client = None
            return self.permits_in(window), True
        granted = max(0, min(self.block, self.permits_in(window) - (total - self.block)))
        return granted, granted < self.block


def build_rate_limiter(rate: float):
    if not rate or rate <= 0:
        return NoRateLimit()
    url = settings.SMS_RATE_LIMIT_REDIS_URL
    if url:
        return RedisWindowRateLimiter(rate, url)
    return WindowRateLimiter(rate)
