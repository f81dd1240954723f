"""Bring a run's unsent messages in line with the run's status, in chunks, outside requests.

Pausing, resuming or cancelling a campaign changes the run's status at once (that is what the
send-time check reads, so nothing is sent wrongly in between); the messages follow here, in
chunks of their own transactions, so an operator's request never waits on a million-row UPDATE.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from api.message_ids import of_runs, run_message_ids
from api.models import UNSENT_MESSAGE_STATUSES, CampaignRun, Message, MessageStatus, RunStatus

logger = logging.getLogger(__name__)

# run status -> (message statuses to move, where they go, the error to record)
MOVES = {
    RunStatus.CANCELLED: (UNSENT_MESSAGE_STATUSES, MessageStatus.CANCELLED, "run cancelled"),
    RunStatus.PAUSED: ((MessageStatus.PENDING,), MessageStatus.PAUSED, ""),
    RunStatus.RUNNING: ((MessageStatus.PAUSED,), MessageStatus.PENDING, ""),
    RunStatus.SCHEDULED: ((MessageStatus.PAUSED,), MessageStatus.PENDING, ""),
}


def runs_out_of_line(*, now: datetime, cancelled_within: timedelta) -> list[int]:
    """Paused runs, and runs cancelled within `cancelled_within`, that still hold pending
    messages: their reconcile has not run yet or was lost (a broker outage). The sweep sends
    them to reconcile again, so a lost task never leaves messages pending forever. Each probe
    walks the run's due index only (O(1) per run)."""
    runs = CampaignRun.objects.filter(
        Q(status=RunStatus.PAUSED)
        | Q(status=RunStatus.CANCELLED, finished_at__gte=now - cancelled_within)
    ).values_list("id", flat=True)
    return [run_id for run_id in runs if _has_pending(run_id)]


def _has_pending(run_id: int) -> bool:
    pending = Message.objects.filter(of_runs([run_id]), status=MessageStatus.PENDING)
    return pending.order_by("next_attempt_at").values_list("id", flat=True).first() is not None


def reconcile_run_messages(*, run_id: int, chunk_size: int = 20_000) -> int:
    """Move the run's unsent messages to match its current status; returns how many moved.
    Safe to run twice or concurrently: each chunk re-reads the status and moves only rows
    still in a source status."""
    moved = 0
    after, high = run_message_ids(run_id)
    after -= 1
    while True:
        with transaction.atomic():
            status = CampaignRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
            if status not in MOVES:
                break
            sources, target, error = MOVES[status]
            # Walk the run's id range in order (its primary key): O(run), not O(run^2).
            chunk = list(
                Message.objects.filter(pk__gt=after, pk__lt=high)
                .order_by("pk")
                .values_list("id", "status")[:chunk_size]
            )
            if not chunk:
                break
            after = chunk[-1][0]
            ids = [message_id for message_id, state in chunk if state in sources]
            if ids:
                moved += Message.objects.filter(pk__any_of=ids, status__in=sources).update(
                    status=target, last_error=error
                )
    if moved:
        logger.info(
            "run reconciled run=%s status=%s moved=%s",
            run_id,
            status,
            moved,
            extra={"run_id": run_id},
        )
    return moved
