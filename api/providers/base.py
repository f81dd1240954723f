"""One small interface for every way of sending an SMS (Django email-backend style).

A provider takes a batch and *returns* one result per message: sent, retry later, or failed for
good. Expected outcomes are results, not exceptions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    message_id: int
    phone: str
    text: str
    # Wall-clock time (epoch seconds) after which no request may start: the campaign's end, or
    # the end of the sender's lease. A provider holds such a message back instead of sending it.
    not_after: float | None = None


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


ResultCallback = Callable[[SendResult], None]


class BaseProvider:
    # Messages this provider may have in flight at once; the dispatcher never submits more.
    concurrency: int = 1000

    def send_messages(self, messages: Sequence[OutgoingSms]) -> list[SendResult]:
        raise NotImplementedError

    def submit(self, messages: Sequence[OutgoingSms], on_result: ResultCallback) -> None:
        """Start sending; `on_result` is called once per message, as soon as its outcome is
        known, possibly from another thread. Providers that send in the background (http)
        return at once. Nothing raises: a provider error becomes each message's retry."""
        try:
            results = self.send_messages(messages)
            if len(results) != len(messages):
                raise RuntimeError(f"{len(results)} results for {len(messages)} messages")
        except Exception as exc:  # noqa: BLE001 - any provider bug becomes a retry, not a crash
            logger.exception("provider error on %s messages", len(messages))
            results = [provider_error(sms, exc) for sms in messages]
        for result in results:
            on_result(result)

    def close(self) -> None:
        """Release connections; the provider may be used again afterwards."""


def provider_error(sms: OutgoingSms, exc: BaseException) -> SendResult:
    """An unexpected failure while sending: the outcome is unknown, so retry (same id)."""
    return SendResult(sms.message_id, Outcome.RETRY, f"provider error: {type(exc).__name__}")


def send_and_wait(provider: BaseProvider, outgoing: list[OutgoingSms]) -> list[SendResult]:
    """Submit the messages and wait for every outcome; results in the order of `outgoing`."""
    if not outgoing:
        return []
    results: dict[int, SendResult] = {}
    done = threading.Event()

    def on_result(result: SendResult) -> None:
        results[result.message_id] = result
        if len(results) == len(outgoing):
            done.set()

    provider.submit(outgoing, on_result)
    done.wait()
    return [results[sms.message_id] for sms in outgoing]


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
