"""Resend to failed: which earlier run a new run re-sends the failures of."""

from __future__ import annotations

from api.domain.errors import CampaignStateConflict, InvalidInput
from api.models import ACTIVE_RUN_STATUSES, RESENDABLE_MESSAGE_STATUSES, Campaign, CampaignRun

from .counters import run_counts

# The one value `only` takes on a start.
ONLY_FAILED = "failed"


def run_to_resend(campaign: Campaign) -> CampaignRun:
    """The campaign's latest run, if it is over and some of its messages ended failed or
    expired (read from the run's counters: no scan of its messages). CampaignStateConflict
    when there is no run or it is not over; InvalidInput when nothing failed. Both name
    `only`."""
    latest = CampaignRun.objects.filter(campaign=campaign).order_by("-number").first()
    if latest is None:
        raise CampaignStateConflict(
            "The campaign has no run yet: start it before resending to failed.", field="only"
        )
    if latest.status in ACTIVE_RUN_STATUSES:
        raise CampaignStateConflict(
            f"The latest run is {latest.status}: resend to failed once it has ended"
            " (or cancel it).",
            field="only",
        )
    counts = run_counts([latest.id]).get(latest.id, {})
    if not sum(counts.get(status, 0) for status in RESENDABLE_MESSAGE_STATUSES):
        raise InvalidInput(
            f"No message of the latest run (number {latest.number}) ended failed or expired.",
            field="only",
        )
    return latest
