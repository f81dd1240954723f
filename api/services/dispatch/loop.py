"""The dispatch loop: claim, check, send, record; pipelined, bounded in time."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from api.models import (
    Campaign,
    CampaignRun,
    MessageStatus,
    mask_phone,
)
from api.providers.base import BaseProvider, Outcome, OutgoingSms, SendResult, get_provider

from .claims import ClaimedMessage, _load_clients, claim_due_messages
from .outcomes import Transition, after_send, before_send, record_transitions
from .sweep import finish_completed_runs

logger = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    more_due: bool = False

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.outcomes.update(other.outcomes)


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
    if report.claimed and not report.more_due:
        # Only once the backlog is drained: the check reads the run's messages, and a task
        # that stopped on its time budget will be followed by another one anyway.
        finish_completed_runs()
    if report.claimed:
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
