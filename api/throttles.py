"""Brute-force brakes for the token endpoints: attempts per client address and per username.

A fixed-window counter in the shared cache (Redis in production, where INCR is atomic, so
concurrent guesses from many connections are all counted; the embedded file cache is for one
developer). DRF's own throttles keep a list of timestamps read and written back, which lets a
burst of parallel requests all pass before any is recorded.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle


class _WindowThrottle(SimpleRateThrottle):
    cache_format = "throttle:%(scope)s:%(ident)s:%(window)d"

    def ident(self, request) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        ident = self.ident(request)
        if ident is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        key = self.cache_format % {"scope": self.scope, "ident": ident, "window": window}
        cache.add(key, 0, timeout=self.duration + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=self.duration + 1)
            count = 1
        self._wait = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return max(1, math.ceil(self._wait))


class TokenAddressThrottle(_WindowThrottle):
    """Every call of a token endpoint from one client address (see TRUSTED_PROXY_COUNT)."""

    scope = "token_ip"

    def ident(self, request):
        return self.get_ident(request)


class TokenUsernameThrottle(_WindowThrottle):
    """Every attempt at one username, from anywhere: a botnet cannot spread the guesses."""

    scope = "token_username"

    def ident(self, request):
        data = request.data
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username:
            return None  # the serializer answers 400 for it
        return hashlib.sha256(username.encode()).hexdigest()[:32]
