"""Campaign lifecycle: create, start (a run), pause, resume, cancel.

Every transition is a conditional write on the row locked with SELECT ... FOR UPDATE, so two
operators (or an operator and a worker) racing on one campaign cannot both win. (Just past
~250 lines: one service per transition, read best side by side.)
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from api.domain.audience import ClientFilter
from api.domain.campaigns import validate_campaign_row
from api.domain.changes import UNCHANGED, Unchanged, given
from api.domain.errors import (
    AudienceEmpty,
    CampaignEnded,
    CampaignStateConflict,
    InvalidInput,
    NotFound,
)
from api.models import (
    ACTIVE_RUN_STATUSES,
    CLOSED_CAMPAIGN_STATUSES,
    STARTED_CAMPAIGN_STATUSES,
    Campaign,
    CampaignRun,
    CampaignStatus,
    RunStatus,
)
from api.selectors import campaign_audience

from .resend import run_to_resend

logger = logging.getLogger(__name__)


def planning_lead() -> timedelta:
    """Runs are planned this long before their start so the first sweep finds them ready."""
    return timedelta(seconds=2 * settings.DISPATCH_INTERVAL_SECONDS)


def _locked(campaign_id: int) -> Campaign:
    try:
        return Campaign.objects.select_for_update().get(pk=campaign_id)
    except Campaign.DoesNotExist:
        raise NotFound("Campaign not found.", field="campaign") from None


def _active_run(campaign: Campaign) -> CampaignRun | None:
    return (
        CampaignRun.objects.select_for_update()
        .filter(campaign=campaign, status__in=ACTIVE_RUN_STATUSES)
        .order_by("-number")
        .first()
    )


def _set_status(campaign: Campaign, status: str) -> Campaign:
    campaign.status = status
    campaign.save(update_fields=["status", "updated_at"])
    logger.info("campaign %s campaign=%s", status, campaign.id, extra={"campaign_id": campaign.id})
    return campaign


def _after_commit(task, *args) -> None:
    """Enqueue a Celery task once the transaction commits (a worker must see the rows)."""
    transaction.on_commit(lambda: task.delay(*args))


@transaction.atomic
def create_campaign(
    *,
    text_message: str,
    start_datetime: datetime,
    end_datetime: datetime,
    time_interval_start: time | None = None,
    time_interval_end: time | None = None,
    tag: str = "",
    client_filter: ClientFilter | list | None = None,
    auto_start: bool = True,
) -> Campaign:
    """Create a campaign (InvalidInput if it breaks a campaign rule); with auto_start (the
    default) it is started at once. Not idempotent: each call is a new campaign."""
    campaign = Campaign(
        text_message=text_message,
        start_datetime=start_datetime,
        end_datetime=end_datetime,
        time_interval_start=time_interval_start,
        time_interval_end=time_interval_end,
        tag=tag,
        client_filter=client_filter,
    )
    validate_campaign_row(campaign)
    campaign.save()
    logger.info("campaign created campaign=%s", campaign.id, extra={"campaign_id": campaign.id})
    if auto_start:
        start_campaign(campaign_id=campaign.id)
        campaign.refresh_from_db()
    return campaign


@transaction.atomic
def update_campaign(
    *,
    campaign_id: int,
    text_message: str | Unchanged = UNCHANGED,
    start_datetime: datetime | Unchanged = UNCHANGED,
    end_datetime: datetime | Unchanged = UNCHANGED,
    time_interval_start: time | None | Unchanged = UNCHANGED,
    time_interval_end: time | None | Unchanged = UNCHANGED,
    tag: str | Unchanged = UNCHANGED,
    client_filter: ClientFilter | list | None | Unchanged = UNCHANGED,
) -> Campaign:
    """Edit a campaign that is not finished or cancelled (the fields given; the others keep
    their values). Text and window changes apply to messages not yet sent; audience changes
    apply to runs not yet planned. A repeat is harmless."""
    changes = given(
        text_message=text_message,
        start_datetime=start_datetime,
        end_datetime=end_datetime,
        time_interval_start=time_interval_start,
        time_interval_end=time_interval_end,
        tag=tag,
        client_filter=client_filter,
    )
    campaign = _locked(campaign_id)
    if campaign.status in CLOSED_CAMPAIGN_STATUSES:
        raise CampaignStateConflict(f"A {campaign.status} campaign cannot be edited.")
    for name, value in changes.items():
        setattr(campaign, name, value)
    validate_campaign_row(campaign, changed=changes)
    campaign.save()
    return campaign


@transaction.atomic
def start_campaign(
    *, campaign_id: int, force_resend: bool = False, only_failed: bool = False
) -> CampaignRun:
    """Open a new run; planning happens in a worker once the start is near. A campaign started
    before needs force_resend (CampaignStateConflict otherwise); `only_failed` opens a run for
    the clients whose message in the latest (ended) run failed or expired (resend.py)."""
    from api.tasks import plan_run  # api.tasks imports the services: import when called

    campaign = _locked(campaign_id)
    now = timezone.now()
    resend_of = _check_startable(
        campaign, now=now, force_resend=force_resend, only_failed=only_failed
    )
    if force_resend:
        _close_runs(campaign, RunStatus.CANCELLED, reason="superseded by a forced re-send")
    number = (campaign.runs.aggregate(top=Max("number"))["top"] or 0) + 1
    run = CampaignRun.objects.create(
        campaign=campaign,
        number=number,
        status=RunStatus.SCHEDULED,
        force_resend=force_resend,
        resend_of=resend_of,
    )
    campaign.status = CampaignStatus.SCHEDULED
    campaign.save(update_fields=["status", "updated_at"])
    if campaign.start_datetime <= now + planning_lead():
        _after_commit(plan_run, run.id)
    logger.info(
        "campaign started campaign=%s run=%s force=%s resend_of=%s",
        campaign.id,
        run.id,
        force_resend,
        resend_of and resend_of.id,
        extra={"campaign_id": campaign.id, "run_id": run.id},
    )
    return run


def _check_startable(
    campaign: Campaign, *, now: datetime, force_resend: bool, only_failed: bool
) -> CampaignRun | None:
    """The start rules; returns the run to resend the failures of (only_failed)."""
    if only_failed and force_resend:
        raise InvalidInput("Give only=failed or force_resend, not both.", field="only")
    resend_of = run_to_resend(campaign) if only_failed else None
    if campaign.status in STARTED_CAMPAIGN_STATUSES and not (force_resend or only_failed):
        raise CampaignStateConflict(
            f"Campaign is {campaign.status}; pass force_resend=true to send it again.",
        )
    if campaign.end_datetime <= now:
        raise CampaignEnded()
    if not campaign_audience(campaign).exists():
        raise AudienceEmpty()
    return resend_of


def _close_runs(campaign: Campaign, run_status: str, *, reason: str) -> None:
    """Close the campaign's active runs: their unsent messages are cancelled, never sent."""
    from api.tasks import reconcile_run  # api.tasks imports the services: import when called

    runs = list(
        CampaignRun.objects.select_for_update().filter(
            campaign=campaign, status__in=ACTIVE_RUN_STATUSES
        )
    )
    CampaignRun.objects.filter(pk__in=[run.pk for run in runs]).update(
        status=run_status, finished_at=timezone.now(), error=reason
    )
    for run in runs:
        _after_commit(reconcile_run, run.id)


@transaction.atomic
def pause_campaign(*, campaign_id: int) -> Campaign:
    """Stop sending; pending messages wait as paused. Only a scheduled or running campaign."""
    from api.tasks import reconcile_run  # api.tasks imports the services: import when called

    campaign = _locked(campaign_id)
    if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING):
        raise CampaignStateConflict(
            f"Only a scheduled or running campaign can be paused, not {campaign.status}.",
        )
    run = _active_run(campaign)
    if run is not None:
        run.status = RunStatus.PAUSED
        run.save(update_fields=["status"])
        _after_commit(reconcile_run, run.id)  # pending messages become paused
    return _set_status(campaign, CampaignStatus.PAUSED)


@transaction.atomic
def resume_campaign(*, campaign_id: int) -> Campaign:
    """Continue a paused campaign from where it stopped (nothing is sent twice)."""
    from api.tasks import plan_run, reconcile_run  # api.tasks imports the services

    campaign = _locked(campaign_id)
    if campaign.status != CampaignStatus.PAUSED:
        raise CampaignStateConflict(
            f"Only a paused campaign can be resumed, not {campaign.status}."
        )
    if campaign.end_datetime <= timezone.now():
        raise CampaignEnded()
    run = _active_run(campaign)
    planned = run is not None and run.planned_at is not None
    if run is not None:
        run.status = RunStatus.RUNNING if planned else RunStatus.SCHEDULED
        run.save(update_fields=["status"])
        # Paused messages become pending again (then wake a dispatcher); those whose moment
        # passed are due at once and the send-time window check re-plans any outside it.
        _after_commit(reconcile_run, run.id)
        if not planned and campaign.start_datetime <= timezone.now() + planning_lead():
            _after_commit(plan_run, run.id)
    return _set_status(campaign, CampaignStatus.RUNNING if planned else CampaignStatus.SCHEDULED)


@transaction.atomic
def cancel_campaign(*, campaign_id: int) -> Campaign:
    """Stop for good: unsent messages are cancelled. Not once finished or cancelled."""
    campaign = _locked(campaign_id)
    if campaign.status in CLOSED_CAMPAIGN_STATUSES:
        raise CampaignStateConflict(f"Campaign is already {campaign.status}.")
    _close_runs(campaign, RunStatus.CANCELLED, reason="campaign cancelled")
    return _set_status(campaign, CampaignStatus.CANCELLED)


@transaction.atomic
def delete_campaign(*, campaign_id: int) -> None:
    """Delete a campaign that never sent anything; one with runs keeps its history."""
    campaign = _locked(campaign_id)
    if campaign.runs.exists():
        raise CampaignStateConflict(
            "The campaign has runs and message history; cancel it instead of deleting.",
        )
    campaign.delete()
