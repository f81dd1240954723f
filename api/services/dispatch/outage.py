"""Database steps for a worker that holds facts the database must not lose.

A dispatcher holds the gateway's answers until they are written. When the database goes away
(restart, failover, a killed connection) a step fails with a connection error; instead of
dying with those answers, the worker drops the connection, waits with backoff and tries again,
while everything it holds stays in memory.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, IntegrityError, connection

logger = logging.getLogger(__name__)

RETRY_MAX_SECONDS = 5.0


class DatabaseGuard:
    def __init__(self) -> None:
        self.down_since: float | None = None  # monotonic
        self.retry_at = 0.0
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def run(self, operation: Callable[[], None], *, holding: Callable[[], str]) -> bool:
        """Run one step unless a retry is not due yet; True if it ran. `holding()` says what
        the worker holds, for the log."""
        if self.down and time.monotonic() < self.retry_at:
            return False
        held = holding() if self.down else ""
        try:
            operation()
        except IntegrityError:
            raise  # a bug or a broken invariant, not an outage
        except DatabaseError as exc:
            self._failed(exc, holding)
            return False
        if self.down:
            logger.warning(
                "database is back after %.1fs (held %s)", time.monotonic() - self.down_since, held
            )
            self.down_since, self.failures = None, 0
        return True

    def _failed(self, exc: DatabaseError, holding: Callable[[], str]) -> None:
        now = time.monotonic()
        if not self.down:
            self.down_since = now
            logger.warning(
                "database unavailable (%s): holding %s; retrying", type(exc).__name__, holding()
            )
        self.failures += 1
        self.retry_at = now + min(RETRY_MAX_SECONDS, 0.1 * 2**self.failures)
        with contextlib.suppress(Exception):
            connection.close()  # the next query connects afresh

    def sleep_until_retry(self) -> None:
        if self.down:
            time.sleep(max(0.0, self.retry_at - time.monotonic()))
