"""Dispatch: claim due messages in batches, check them at send time, send, record outcomes.

A claim turns a batch of due `pending` rows into `sending` with a lease and a random claim
token, in one statement (Postgres: FOR UPDATE SKIP LOCKED, so any number of workers on any
number of hosts share the work). Outcomes are written back only where the token still matches:
a worker that outlived its lease cannot overwrite what another worker did since.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections import Counter, defaultdict
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone

from api.models import (
    OPEN_MESSAGE_STATUSES,
    Campaign,
    CampaignRun,
    CampaignStatus,
    Client,
    Message,
    MessageStatus,
    RunStatus,
    mask_phone,
)
from api.providers.base import BaseProvider, Outcome, OutgoingSms, SendResult, get_provider

from .send_window import in_window, next_send_time, zone

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ClaimedMessage:
    id: int
    run_id: int
    client_id: int
    attempts: int
    phone: str = ""
    timezone: str = "UTC"
    client_deleted: bool = False


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    more_due: bool = False

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.outcomes.update(other.outcomes)


# --- claiming -----------------------------------------------------------------------------
def _claim_sql() -> str:
    table = connection.ops.quote_name(Message._meta.db_table)
    due = (
        f"SELECT id FROM {table} WHERE status = %s AND next_attempt_at <= %s"
        " ORDER BY next_attempt_at LIMIT %s"
    )
    if connection.features.has_select_for_update_skip_locked:
        # `id = ANY(ARRAY(...))` pins the plan to primary-key lookups; a plain `IN (SELECT ...)`
        # was planned as a hash semi-join over a sequential scan: O(table) per claim.
        where = f"id = ANY(ARRAY({due} FOR UPDATE SKIP LOCKED))"
    else:
        where = f"id IN ({due})"  # SQLite: one writer at a time, so the statement is atomic
    return (
        f"UPDATE {table} SET status = %s, lease_expires_at = %s, claim_token = %s,"
        f" attempts = attempts + 1 WHERE {where} RETURNING id, run_id, client_id, attempts"
    )


def claim_due_messages(
    *, limit: int, now: datetime | None = None
) -> tuple[int, list[ClaimedMessage]]:
    """Claim up to `limit` due messages for this worker; returns (claim token, messages)."""
    now = now or timezone.now()
    token = secrets.randbits(62)
    adapt = connection.ops.adapt_datetimefield_value
    lease_until = now + timedelta(seconds=settings.DISPATCH_LEASE_SECONDS)
    params = [MessageStatus.SENDING, adapt(lease_until), token]
    params += [MessageStatus.PENDING, adapt(now), limit]
    with connection.cursor() as cursor:  # one statement: atomic without a transaction block
        cursor.execute(_claim_sql(), params)
        claimed = [ClaimedMessage(*row) for row in cursor.fetchall()]
    return token, claimed


def _load_clients(batch: list[ClaimedMessage]) -> None:
    """Phone, zone and deletion of each client, read at send time (not at claim time)."""
    rows = Client.all_objects.filter(pk__any_of={m.client_id for m in batch}).values_list(
        "id", "phone_number", "timezone", "deleted_at"
    )
    by_id = {row[0]: row for row in rows}
    for message in batch:
        row = by_id.get(message.client_id)
        if row is None:
            message.client_deleted = True
        else:
            _, message.phone, message.timezone, deleted_at = row
            message.client_deleted = deleted_at is not None


# --- recording outcomes -------------------------------------------------------------------
@dataclass(slots=True)
class Transition:
    """Where one claimed message goes next."""

    status: str
    next_attempt_at: datetime | None = None
    error: str = ""
    refund_attempt: bool = False  # the message was not actually sent this time


def record_transitions(token: int, transitions: dict[int, Transition], now: datetime) -> int:
    """Write outcomes in bulk: one UPDATE per kind of outcome, guarded by the claim token."""
    groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for message_id, transition in transitions.items():
        groups[(transition.status, transition.refund_attempt)].append(message_id)
    written = 0
    # One statement needs no transaction block (the common case: a whole batch sent).
    with transaction.atomic() if len(groups) > 1 else nullcontext():
        for (status, refund), ids in groups.items():
            values: dict = {"status": status, "lease_expires_at": None, "claim_token": None}
            if refund:
                values["attempts"] = F("attempts") - 1
            if status == MessageStatus.SENT:
                values["sent_at"] = now
                values["last_error"] = ""
            else:
                values["last_error"] = _per_row(ids, transitions, "error")
            if status == MessageStatus.PENDING:
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
        return Transition(MessageStatus.SENT)
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


@dataclass
class PreparedBatch:
    """A claimed batch after the send-time checks: what to send and what is already decided."""

    token: int
    batch: list[ClaimedMessage]
    campaigns: dict[int, Campaign]  # by run id
    to_send: list[ClaimedMessage]
    transitions: dict[int, Transition]

    def outgoing(self) -> list[OutgoingSms]:
        return [
            OutgoingSms(m.id, m.phone, self.campaigns[m.run_id].text_message) for m in self.to_send
        ]


def prepare_batch(token: int, batch: list[ClaimedMessage]) -> PreparedBatch:
    """Read the batch's clients, runs and campaigns as they are now and run the checks."""
    now = timezone.now()
    _load_clients(batch)
    runs = CampaignRun.objects.filter(pk__any_of={m.run_id for m in batch}).select_related(
        "campaign"
    )
    campaigns = {run.id: run.campaign for run in runs}
    run_statuses = {run.id: run.status for run in runs}
    prepared = PreparedBatch(token, batch, campaigns, [], {})
    replans: dict[int, dict] = defaultdict(dict)
    for message in batch:
        campaign = campaigns[message.run_id]
        decision = before_send(
            message, campaign, run_statuses[message.run_id], now, replans[campaign.id]
        )
        if decision is None:
            prepared.to_send.append(message)
        else:
            prepared.transitions[message.id] = decision
    return prepared


def complete_batch(prepared: PreparedBatch, results: list[SendResult]) -> DispatchReport:
    """Turn the gateway's answers into transitions and write them all."""
    sent_at = timezone.now()
    transitions = prepared.transitions
    for message, result in zip(prepared.to_send, results, strict=True):
        transitions[message.id] = after_send(
            result, message, prepared.campaigns[message.run_id], sent_at
        )
    record_transitions(prepared.token, transitions, timezone.now())
    report = DispatchReport(claimed=len(prepared.batch))
    for transition in transitions.values():
        report.outcomes[str(transition.status)] += 1
    _log_problems(prepared, transitions)
    return report


def _log_problems(prepared: PreparedBatch, transitions: dict[int, Transition]) -> None:
    """One line per failed message; retries summarised per batch, not one line each."""
    retry_errors: Counter = Counter()
    for message in prepared.batch:
        transition = transitions[message.id]
        if transition.status == MessageStatus.FAILED:
            logger.warning(
                "message failed message=%s run=%s client=%s phone=%s error=%s",
                message.id,
                message.run_id,
                message.client_id,
                mask_phone(message.phone),
                transition.error,
            )
        elif transition.status == MessageStatus.PENDING and transition.error:
            retry_errors[transition.error] += 1
    for error, count in retry_errors.items():
        logger.warning("will retry %s messages: %s", count, error)


def deliver_batch(token: int, batch: list[ClaimedMessage], provider: BaseProvider):
    """Check, send and record one claimed batch (the unpipelined form of the loop's work)."""
    prepared = prepare_batch(token, batch)
    outgoing = prepared.outgoing()
    results = _collect(provider.submit_messages(outgoing), outgoing) if outgoing else []
    return complete_batch(prepared, results)


def _collect(future, outgoing: list[OutgoingSms]) -> list[SendResult]:
    """The provider's results; a provider that raises loses nothing: all become retries."""
    try:
        results = future.result()
        if len(results) == len(outgoing):
            return results
        error = f"provider returned {len(results)} results for {len(outgoing)} messages"
    except Exception as exc:  # noqa: BLE001 - any provider bug becomes a retry, not a crash
        logger.exception("provider error on a batch of %s messages", len(outgoing))
        error = f"provider error: {type(exc).__name__}"
    return [SendResult(sms.message_id, Outcome.RETRY, error) for sms in outgoing]


# --- the loop and the sweep ---------------------------------------------------------------
def dispatch_due_messages(
    *,
    time_budget: float | None = None,
    batch_size: int | None = None,
    provider: BaseProvider | None = None,
) -> DispatchReport:
    """Send due messages batch after batch until none are due or the time budget is spent.

    Pipelined: while one batch is on the wire (the provider's own thread), the next is
    claimed and checked, so database round trips overlap with gateway round trips.
    """
    time_budget = settings.DISPATCH_TASK_SECONDS if time_budget is None else time_budget
    batch_size = batch_size or settings.DISPATCH_BATCH_SIZE
    provider = provider or get_provider()
    deadline = time.monotonic() + time_budget
    report = DispatchReport()
    in_flight = None  # (prepared batch, its outgoing messages, the provider's future)
    while True:
        following = None
        if time.monotonic() < deadline:
            token, batch = claim_due_messages(limit=batch_size)
            if batch:
                prepared = prepare_batch(token, batch)
                outgoing = prepared.outgoing()
                following = (prepared, outgoing, _submit(provider, outgoing))
        else:
            report.more_due = True
        if in_flight is not None:
            prepared, outgoing, future = in_flight
            report.add(complete_batch(prepared, _collect(future, outgoing) if outgoing else []))
        if following is None:
            break
        in_flight = following
    if report.claimed:
        finish_completed_runs()
        logger.info(
            "dispatch claimed=%s outcomes=%s more_due=%s",
            report.claimed,
            dict(report.outcomes),
            report.more_due,
        )
    return report


def _submit(provider: BaseProvider, outgoing: list[OutgoingSms]):
    if not outgoing:
        return None
    try:
        return provider.submit_messages(outgoing)
    except Exception as exc:  # noqa: BLE001 - surfaced by _collect as retries
        failed: Future = Future()
        failed.set_exception(exc)
        return failed


def reap_expired_leases(*, now: datetime | None = None) -> int:
    """Messages whose worker died mid-send go back to pending, due at once."""
    now = now or timezone.now()
    count = Message.objects.filter(status=MessageStatus.SENDING, lease_expires_at__lt=now).update(
        status=MessageStatus.PENDING,
        next_attempt_at=now,
        lease_expires_at=None,
        claim_token=None,
        last_error="lease expired (worker lost); sending again",
    )
    if count:
        logger.warning("reaped %s messages with expired leases", count)
    return count


def expire_ended_campaigns(*, now: datetime | None = None) -> int:
    """Unsent messages of campaigns past their end are expired, never sent."""
    now = now or timezone.now()
    runs = CampaignRun.objects.filter(
        status__in=(RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.SCHEDULED),
        campaign__end_datetime__lte=now,
    )
    run_ids = list(runs.values_list("id", flat=True))
    if not run_ids:
        return 0
    count = Message.objects.filter(
        run_id__in=run_ids, status__in=(MessageStatus.PENDING, MessageStatus.PAUSED)
    ).update(status=MessageStatus.EXPIRED, last_error="campaign ended")
    # A run that never got planned before its end has nothing left to do.
    CampaignRun.objects.filter(
        pk__in=run_ids, status__in=(RunStatus.SCHEDULED, RunStatus.PAUSED)
    ).update(status=RunStatus.RUNNING, planned_at=F("created_at"))
    finish_completed_runs()
    return count


def finish_completed_runs() -> int:
    """Runs with nothing left to send are finished, and so are their campaigns."""
    now = timezone.now()
    open_messages = Message.objects.filter(run_id=OuterRef("pk"), status__in=OPEN_MESSAGE_STATUSES)
    finished = (
        CampaignRun.objects.filter(status=RunStatus.RUNNING, planned_at__isnull=False)
        .filter(~Exists(open_messages))
        .update(status=RunStatus.FINISHED, finished_at=now)
    )
    if finished:
        active_runs = CampaignRun.objects.filter(
            campaign_id=OuterRef("pk"),
            status__in=(RunStatus.SCHEDULED, RunStatus.RUNNING, RunStatus.PAUSED),
        )
        Campaign.objects.filter(
            status__in=(CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED)
        ).filter(runs__status=RunStatus.FINISHED).filter(~Exists(active_runs)).update(
            status=CampaignStatus.FINISHED, updated_at=now
        )
    return finished


def due_messages_exist(*, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return Message.objects.filter(status=MessageStatus.PENDING, next_attempt_at__lte=now).exists()
