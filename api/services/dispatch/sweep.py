"""Beat's housekeeping: dead leases, ended campaigns, finished runs."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from api.models import (
    OPEN_MESSAGE_STATUSES,
    Campaign,
    CampaignRun,
    CampaignStatus,
    Message,
    MessageStatus,
    RunStatus,
)

logger = logging.getLogger(__name__)


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
    """Whether any message is due. The ORDER BY pins the plan to the partial due index: a bare
    EXISTS was planned as a sequential scan (sent rows keep past times), O(table) at 1M rows."""
    now = now or timezone.now()
    due = Message.objects.filter(status=MessageStatus.PENDING, next_attempt_at__lte=now)
    return due.order_by("next_attempt_at").values_list("id", flat=True).first() is not None
