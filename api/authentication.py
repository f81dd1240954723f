"""JWT authentication with the token's user kept in memory for a few seconds.

simplejwt reads the user row on every request (is the user still there, still active, the
password unchanged?). That query was a third of the database round trips of a stats poll, the
call integrators make most. Here a worker process remembers the answer for
AUTH_USER_CACHE_SECONDS (default 5; 0 reads the row every time), so deactivating or deleting a
user, or changing their password when CHECK_REVOKE_TOKEN is on, shuts their tokens out within
that many seconds. The token itself (signature, expiry, type) is still checked on every request.
"""

from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.settings import api_settings

_MAX_ENTRIES = 1024


class JWTAuthentication(authentication.JWTAuthentication):
    _users: dict[tuple, tuple[float, object]] = {}
    _lock = threading.Lock()

    def get_user(self, validated_token):
        ttl = settings.AUTH_USER_CACHE_SECONDS
        if ttl <= 0:
            return super().get_user(validated_token)
        key = (
            validated_token.get(api_settings.USER_ID_CLAIM),
            validated_token.get(api_settings.REVOKE_TOKEN_CLAIM),
        )
        now = time.monotonic()
        cached = self._users.get(key)
        if cached is not None and cached[0] > now:
            # A copy: request.user must not be one object shared by concurrent requests.
            return copy.copy(cached[1])
        user = super().get_user(validated_token)  # raises for a gone or inactive user
        with self._lock:
            if len(self._users) >= _MAX_ENTRIES:
                self._users.clear()
            self._users[key] = (now + ttl, user)
        return copy.copy(user)

    @classmethod
    def forget_users(cls) -> None:
        """Drop every remembered user (tests; a deployment just waits out the seconds)."""
        with cls._lock:
            cls._users.clear()
