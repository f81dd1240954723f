"""Campaign lifecycle: create, start (a run), pause, resume, cancel.

Every transition is a conditional write on the row locked with SELECT ... FOR UPDATE, so two
operators (or an operator and a worker) racing on one campaign cannot both win.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from api.domain.errors import AudienceEmpty, CampaignEnded, CampaignStateConflict, NotFound
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


def _enqueue_after_commit(task_name: str, *args) -> None:
    from api import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args))


@transaction.atomic
def create_campaign(*, fields: dict, auto_start: bool = True) -> Campaign:
    """Create a campaign; with auto_start (the default) it is started at once."""
    campaign = Campaign.objects.create(**fields)
    logger.info("campaign created campaign=%s", campaign.id, extra={"campaign_id": campaign.id})
    if auto_start:
        start_campaign(campaign_id=campaign.id)
        campaign.refresh_from_db()
    return campaign


@transaction.atomic
def update_campaign(*, campaign_id: int, fields: dict) -> Campaign:
    """Edit a campaign that is not finished or cancelled. Text and window changes apply to
    messages not yet sent; audience changes apply to runs not yet planned."""
    campaign = _locked(campaign_id)
    if campaign.status in CLOSED_CAMPAIGN_STATUSES:
        raise CampaignStateConflict(f"A {campaign.status} campaign cannot be edited.")
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save()
    return campaign


@transaction.atomic
def start_campaign(*, campaign_id: int, force_resend: bool = False) -> CampaignRun:
    """Open a new run; planning happens in a worker once the start is near. A campaign started
    before needs force_resend (CampaignStateConflict otherwise)."""
    campaign = _locked(campaign_id)
    now = timezone.now()
    if campaign.status in STARTED_CAMPAIGN_STATUSES and not force_resend:
        raise CampaignStateConflict(
            f"Campaign is {campaign.status}; pass force_resend=true to send it again.",
        )
    if campaign.end_datetime <= now:
        raise CampaignEnded()
    if not campaign_audience(campaign).exists():
        raise AudienceEmpty()
    if force_resend:
        _close_runs(campaign, RunStatus.CANCELLED, reason="superseded by a forced re-send")
    number = (campaign.runs.aggregate(top=Max("number"))["top"] or 0) + 1
    run = CampaignRun.objects.create(
        campaign=campaign, number=number, status=RunStatus.SCHEDULED, force_resend=force_resend
    )
    campaign.status = CampaignStatus.SCHEDULED
    campaign.save(update_fields=["status", "updated_at"])
    if campaign.start_datetime <= now + planning_lead():
        _enqueue_after_commit("plan_run", run.id)
    logger.info(
        "campaign started campaign=%s run=%s force=%s",
        campaign.id,
        run.id,
        force_resend,
        extra={"campaign_id": campaign.id, "run_id": run.id},
    )
    return run


def _close_runs(campaign: Campaign, run_status: str, *, reason: str) -> None:
    """Close the campaign's active runs: their unsent messages are cancelled, never sent."""
    runs = list(
        CampaignRun.objects.select_for_update().filter(
            campaign=campaign, status__in=ACTIVE_RUN_STATUSES
        )
    )
    CampaignRun.objects.filter(pk__in=[run.pk for run in runs]).update(
        status=run_status, finished_at=timezone.now(), error=reason
    )
    for run in runs:
        _enqueue_after_commit("reconcile_run", run.id)


@transaction.atomic
def pause_campaign(*, campaign_id: int) -> Campaign:
    """Stop sending; pending messages wait as paused. Only a scheduled or running campaign."""
    campaign = _locked(campaign_id)
    if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING):
        raise CampaignStateConflict(
            f"Only a scheduled or running campaign can be paused, not {campaign.status}.",
        )
    run = _active_run(campaign)
    if run is not None:
        run.status = RunStatus.PAUSED
        run.save(update_fields=["status"])
        _enqueue_after_commit("reconcile_run", run.id)  # pending messages become paused
    return _set_status(campaign, CampaignStatus.PAUSED)


@transaction.atomic
def resume_campaign(*, campaign_id: int) -> Campaign:
    """Continue a paused campaign from where it stopped (nothing is sent twice)."""
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
        _enqueue_after_commit("reconcile_run", run.id)
        if not planned and campaign.start_datetime <= timezone.now() + planning_lead():
            _enqueue_after_commit("plan_run", run.id)
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
