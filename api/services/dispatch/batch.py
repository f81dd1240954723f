"""One claimed batch: the send-time checks (what to send, what is already decided)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.utils import timezone

from api.models import Campaign, CampaignRun

from .claims import ClaimedMessage, _load_clients
from .outcomes import Transition, before_send


@dataclass
class PreparedBatch:
    """A claimed batch after the send-time checks: what to send and what is already decided."""

    token: int
    batch: list[ClaimedMessage]
    campaigns: dict[int, Campaign]  # by run id
    to_send: list[ClaimedMessage]
    transitions: dict[int, Transition]


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
