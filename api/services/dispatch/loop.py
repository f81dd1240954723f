"""One claimed batch: the send-time checks, and turning the gateway's answers into writes."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.utils import timezone

from api.masking import mask_phone
from api.models import Campaign, CampaignRun, MessageStatus
from api.providers.base import BaseProvider, OutgoingSms, SendResult, send_and_wait

from .claims import ClaimedMessage, _load_clients
from .outcomes import Transition, after_send, before_send, record_transitions

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
        log_failure(message, transition)
        if transition.status == MessageStatus.PENDING and transition.error:
            retry_errors[transition.error] += 1
    for error, count in retry_errors.items():
        logger.warning("will retry %s messages: %s", count, error)


def log_failure(message: ClaimedMessage, transition: Transition, ids: dict | None = None) -> None:
    """One warning for a message that failed for good (ids, masked phone, the reason)."""
    if transition.status == MessageStatus.FAILED:
        ids = ids or {"message_id": message.id, "run_id": message.run_id}
        logger.warning(
            "message failed message=%s run=%s client=%s phone=%s error=%s",
            message.id,
            message.run_id,
            message.client_id,
            mask_phone(message.phone),
            transition.error,
            extra={"client_id": message.client_id, **ids},
        )


def deliver_batch(token: int, batch: list[ClaimedMessage], provider: BaseProvider):
    """Check, send and record one claimed batch at once (the stream's work for one batch)."""
    prepared = prepare_batch(token, batch)
    return complete_batch(prepared, send_and_wait(provider, prepared.outgoing()))
