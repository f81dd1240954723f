"""One small interface for every way of sending an SMS (Django email-backend style).

A provider takes a batch and *returns* one result per message: sent, retry later, or failed for
good. Expected outcomes are results, not exceptions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    message_id: int
    phone: str
    text: str


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: connect error, timeout, 5xx, 429
    FAILED = "failed"  # permanent: the gateway refused this message


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: int
    outcome: Outcome
    error: str = ""
    retry_after: float | None = None  # seconds the gateway asked us to wait
    attempted: bool = True  # False when the provider held the message back (cool-down)


class BaseProvider:
    def send_messages(self, messages: Sequence[OutgoingSms]) -> list[SendResult]:
        raise NotImplementedError

    def submit_messages(self, messages: Sequence[OutgoingSms]) -> Future:
        """Start sending; the Future resolves to send_messages' results. Providers that can
        send in the background (http) return at once so the caller overlaps its own work."""
        future: Future = Future()
        try:
            future.set_result(self.send_messages(messages))
        except Exception as exc:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Release connections; the provider may be used again afterwards."""


_providers: dict[tuple[str, int], BaseProvider] = {}
_lock = threading.Lock()


def get_provider(path: str | None = None) -> BaseProvider:
    """The provider named in settings.SMS_PROVIDER, one instance per process (fork-safe)."""
    path = path or settings.SMS_PROVIDER
    key = (path, os.getpid())
    with _lock:
        if key not in _providers:
            _providers[key] = import_string(path)()
        return _providers[key]


def reset_providers() -> None:
    with _lock:
        for provider in _providers.values():
            provider.close()
        _providers.clear()
