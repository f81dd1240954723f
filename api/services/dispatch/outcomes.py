"""Deciding and recording: send-time checks, what a gateway answer means, bulk writes."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When

from api.models import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    RunStatus,
)
from api.providers.base import Outcome, SendResult
from api.services.send_window import in_window, next_send_time, zone

from .claims import ClaimedMessage

logger = logging.getLogger(__name__)


# --- recording outcomes -------------------------------------------------------------------
@dataclass(slots=True)
class Transition:
    """Where one claimed message goes next."""

    status: str
    next_attempt_at: datetime | None = None  # pending with None: keeps its due time
    error: str = ""
    refund_attempt: bool = False  # the message was not actually sent this time
    sent_at: datetime | None = None  # when the gateway accepted it (default: when written)


def record_transitions(token: int, transitions: dict[int, Transition], now: datetime) -> int:
    """Write outcomes in bulk: one UPDATE per kind of outcome, guarded by the claim token."""
    groups: dict[tuple[str, bool, datetime | None, bool], list[int]] = defaultdict(list)
    for message_id, transition in transitions.items():
        keep_due = transition.next_attempt_at is None
        key = (transition.status, transition.refund_attempt, transition.sent_at, keep_due)
        groups[key].append(message_id)
    written = 0
    # One statement needs no transaction block (the common case: a whole group sent).
    with transaction.atomic() if len(groups) > 1 else nullcontext():
        for (status, refund, sent_at, keep_due), ids in groups.items():
            values: dict = {"status": status, "lease_expires_at": None, "claim_token": None}
            if refund:
                values["attempts"] = F("attempts") - 1
            if status == MessageStatus.SENT:
                values["sent_at"] = sent_at or now
                values["last_error"] = ""
            else:
                values["last_error"] = _per_row(ids, transitions, "error")
            if status == MessageStatus.PENDING and not keep_due:
                values["next_attempt_at"] = _per_row(ids, transitions, "next_attempt_at")
            written += Message.objects.filter(
                pk__any_of=ids, status=MessageStatus.SENDING, claim_token=token
            ).update(**values)
    return written


def _per_row(ids: list[int], transitions: dict[int, Transition], attribute: str):
    distinct = {getattr(transitions[i], attribute) for i in ids}
    if len(distinct) == 1:
        return Value(distinct.pop())
    return Case(*[When(pk=i, then=Value(getattr(transitions[i], attribute))) for i in ids])


# --- deciding ------------------------------------------------------------------------------
def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never shorter than the gateway's Retry-After."""
    ceiling = min(
        settings.SMS_RETRY_MAX_SECONDS, settings.SMS_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    )
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def after_send(
    result: SendResult, message: ClaimedMessage, campaign: Campaign, now: datetime
) -> Transition:
    if result.outcome == Outcome.SENT:
        return Transition(MessageStatus.SENT, sent_at=now)
    if result.outcome == Outcome.FAILED:
        return Transition(MessageStatus.FAILED, error=result.error)
    attempts = message.attempts - (0 if result.attempted else 1)
    if result.attempted and attempts >= settings.SMS_MAX_ATTEMPTS:
        return Transition(
            MessageStatus.FAILED, error=f"gave up after {attempts} attempts: {result.error}"
        )
    wait = (
        result.retry_after
        if not result.attempted and result.retry_after is not None
        else retry_delay(max(attempts, 1), result.retry_after)
    )
    retry_at = now + timedelta(seconds=wait)
    if retry_at >= campaign.end_datetime:
        return Transition(
            MessageStatus.EXPIRED,
            error=f"campaign ends before the next retry: {result.error}",
            refund_attempt=not result.attempted,
        )
    return Transition(
        MessageStatus.PENDING,
        next_attempt_at=retry_at,
        error=result.error,
        refund_attempt=not result.attempted,
    )


def before_send(
    message: ClaimedMessage,
    campaign: Campaign,
    run_status: str,
    now: datetime,
    replans: dict[str, datetime | None],
) -> Transition | None:
    """The send-time checks; None means send it now."""
    if campaign.status == CampaignStatus.CANCELLED or run_status == RunStatus.CANCELLED:
        return Transition(MessageStatus.CANCELLED, error="campaign cancelled", refund_attempt=True)
    if message.client_deleted:
        return Transition(MessageStatus.CANCELLED, error="client deleted", refund_attempt=True)
    if message.client_opted_out:  # opted out after planning (set_opted_out raced the claim)
        return Transition(MessageStatus.CANCELLED, error="client opted out", refund_attempt=True)
    if now >= campaign.end_datetime:
        return Transition(MessageStatus.EXPIRED, error="campaign ended", refund_attempt=True)
    if campaign.status == CampaignStatus.PAUSED or run_status == RunStatus.PAUSED:
        return Transition(MessageStatus.PAUSED, refund_attempt=True)
    if run_status != RunStatus.RUNNING:
        return Transition(
            MessageStatus.CANCELLED, error=f"run is {run_status}", refund_attempt=True
        )
    local_time = now.astimezone(zone(message.timezone)).time().replace(tzinfo=None)
    if not in_window(local_time, campaign.time_interval_start, campaign.time_interval_end):
        if message.timezone not in replans:
            replans[message.timezone] = next_send_time(
                not_before=now,
                end=campaign.end_datetime,
                window_start=campaign.time_interval_start,
                window_end=campaign.time_interval_end,
                timezone_name=message.timezone,
            )
        next_opening = replans[message.timezone]
        if next_opening is None:
            return Transition(
                MessageStatus.EXPIRED,
                error="no sending window left before the campaign ends",
                refund_attempt=True,
            )
        return Transition(MessageStatus.PENDING, next_attempt_at=next_opening, refund_attempt=True)
    return None
