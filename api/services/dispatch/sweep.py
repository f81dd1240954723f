"""Beat's housekeeping: dead leases, ended campaigns, finished runs, whether anything is due."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from api.message_ids import of_runs, run_ranges_sql
from api.models import (
    ACTIVE_CAMPAIGN_STATUSES,
    ACTIVE_RUN_STATUSES,
    LIVE_RUN_STATUSES,
    UNSENT_MESSAGE_STATUSES,
    Campaign,
    CampaignRun,
    CampaignStatus,
    Message,
    MessageStatus,
    RunStatus,
)

from .claims import sending_run_ids

logger = logging.getLogger(__name__)


# A cancelled run may still hold messages whose worker died mid-send; its leases are reaped
# for this long after the cancel (leases last minutes; this covers a sweep down for days).
CANCELLED_RUN_REAP_WINDOW = timedelta(days=7)


def reap_expired_leases(*, now: datetime | None = None) -> int:
    """Messages whose worker died mid-send go back to pending, due one lease before they were
    due, so that the next claims take them first; in a cancelled run: cancelled, as the
    send-time check would have made them.

    Why earlier: planning gives every client of a zone the same instant, and among equal due
    times the due index returns rows in the order of their row versions, so a reaped row
    (a new version) would come after every message of its run still waiting: its recovery
    would take as long as the rest of the run (measured: 20 s instead of 7 with a 6 s lease).
    They were due when claimed, so they stay due either way."""
    now = now or timezone.now()
    live = list(
        CampaignRun.objects.filter(status__in=LIVE_RUN_STATUSES).values_list("id", flat=True)
    )
    cancelled = list(
        CampaignRun.objects.filter(
            status=RunStatus.CANCELLED, finished_at__gte=now - CANCELLED_RUN_REAP_WINDOW
        ).values_list("id", flat=True)
    )
    expired = Q(status=MessageStatus.SENDING, lease_expires_at__lt=now)
    count = Message.objects.filter(of_runs(live), expired).update(
        status=MessageStatus.PENDING,
        next_attempt_at=F("next_attempt_at") - timedelta(seconds=settings.DISPATCH_LEASE_SECONDS),
        lease_expires_at=None,
        claim_token=None,
        last_error="lease expired (worker lost); sending again",
    )
    count += Message.objects.filter(of_runs(cancelled), expired).update(
        status=MessageStatus.CANCELLED,
        lease_expires_at=None,
        claim_token=None,
        last_error="run cancelled (worker lost mid-send)",
    )
    if count:
        logger.warning("reaped %s messages with expired leases", count)
    return count


def expire_ended_campaigns(*, now: datetime | None = None) -> int:
    """Unsent messages of campaigns past their end are expired, never sent."""
    now = now or timezone.now()
    runs = CampaignRun.objects.filter(
        status__in=ACTIVE_RUN_STATUSES,
        campaign__end_datetime__lte=now,
    )
    run_ids = list(runs.values_list("id", flat=True))
    if not run_ids:
        return 0
    count = Message.objects.filter(of_runs(run_ids), status__in=UNSENT_MESSAGE_STATUSES).update(
        status=MessageStatus.EXPIRED, last_error="campaign ended"
    )
    # A run that never got planned before its end has nothing left to do.
    CampaignRun.objects.filter(
        pk__in=run_ids, status__in=(RunStatus.SCHEDULED, RunStatus.PAUSED)
    ).update(status=RunStatus.RUNNING, planned_at=F("created_at"))
    finish_completed_runs()
    return count


def run_has_open_messages(run_id: int) -> bool:
    """Whether the run still owes a send: a pending (the due index), sending (the lease index)
    or paused message. Each probe is ordered by its index's key so that it walks that partial
    index, O(1), never the run's sent rows; paused rows (a resume in progress) have no index
    and are looked for last. One statement, so one snapshot: a row moving from sending back to
    pending between two probes cannot slip past both."""
    table = connection.ops.quote_name(Message._meta.db_table)
    in_run = run_ranges_sql([run_id])
    probes = (  # (status, the key of its partial index: the probe's order)
        ("pending", "next_attempt_at"),
        ("sending", "lease_expires_at"),
        ("paused", None),
    )
    parts = [
        f"EXISTS (SELECT 1 FROM (SELECT id FROM {table} WHERE {in_run} AND status = %({status})s"
        + (f" ORDER BY {key}" if key else "")
        + " LIMIT 1) AS probe)"
        for status, key in probes
    ]
    params = {
        "pending": MessageStatus.PENDING,
        "sending": MessageStatus.SENDING,
        "paused": MessageStatus.PAUSED,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " OR ".join(parts), params)
        return bool(cursor.fetchone()[0])


def finish_completed_runs() -> int:
    """Runs with nothing left to send are finished, and so are their campaigns."""
    now = timezone.now()
    running = CampaignRun.objects.filter(status=RunStatus.RUNNING, planned_at__isnull=False)
    done = [
        run_id
        for run_id in running.values_list("id", flat=True)
        if not run_has_open_messages(run_id)
    ]
    finished = 0
    if done:
        finished = CampaignRun.objects.filter(pk__in=done, status=RunStatus.RUNNING).update(
            status=RunStatus.FINISHED, finished_at=now
        )
    if finished:
        active_runs = CampaignRun.objects.filter(
            campaign_id=OuterRef("pk"),
            status__in=ACTIVE_RUN_STATUSES,
        )
        Campaign.objects.filter(status__in=ACTIVE_CAMPAIGN_STATUSES).filter(
            runs__status=RunStatus.FINISHED
        ).filter(~Exists(active_runs)).update(status=CampaignStatus.FINISHED, updated_at=now)
    return finished


def due_messages_exist(*, now: datetime | None = None) -> bool:
    """Whether any message of a running run is due. The ORDER BY pins the plan to the partial
    due index: a bare EXISTS was planned as a sequential scan (sent rows keep past times),
    O(table) at 1M rows; the id ranges keep other runs' partitions out of the plan."""
    now = now or timezone.now()
    due = Message.objects.filter(
        of_runs(sending_run_ids()), status=MessageStatus.PENDING, next_attempt_at__lte=now
    )
    return due.order_by("next_attempt_at").values_list("id", flat=True).first() is not None
