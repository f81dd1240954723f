"""Bring a run's unsent messages in line with the run's status, in chunks, outside requests.

Pausing, resuming or cancelling a campaign changes the run's status at once (that is what the
send-time check reads, so nothing is sent wrongly in between); the messages follow here, in
chunks of their own transactions, so an operator's request never waits on a million-row UPDATE.
"""

from __future__ import annotations

import logging

from django.db import transaction

from api.models import CampaignRun, Message, MessageStatus, RunStatus

logger = logging.getLogger(__name__)

# run status -> (message statuses to move, where they go, the error to record)
MOVES = {
    RunStatus.CANCELLED: (
        (MessageStatus.PENDING, MessageStatus.PAUSED),
        MessageStatus.CANCELLED,
        "run cancelled",
    ),
    RunStatus.PAUSED: ((MessageStatus.PENDING,), MessageStatus.PAUSED, ""),
    RunStatus.RUNNING: ((MessageStatus.PAUSED,), MessageStatus.PENDING, ""),
    RunStatus.SCHEDULED: ((MessageStatus.PAUSED,), MessageStatus.PENDING, ""),
}


def reconcile_run_messages(*, run_id: int, chunk_size: int = 20_000) -> int:
    """Move the run's unsent messages to match its current status; returns how many moved.
    Safe to run twice or concurrently: each chunk re-reads the status and moves only rows
    still in a source status."""
    moved, after_client = 0, 0
    while True:
        with transaction.atomic():
            status = CampaignRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
            if status not in MOVES:
                break
            sources, target, error = MOVES[status]
            # Walk the run in client order (the unique index): O(run), not O(run^2).
            chunk = list(
                Message.objects.filter(run_id=run_id, client_id__gt=after_client)
                .order_by("client_id")
                .values_list("id", "client_id", "status")[:chunk_size]
            )
            if not chunk:
                break
            after_client = chunk[-1][1]
            ids = [message_id for message_id, _, state in chunk if state in sources]
            if ids:
                moved += Message.objects.filter(pk__any_of=ids, status__in=sources).update(
                    status=target, last_error=error
                )
    if moved:
        logger.info("run reconciled run=%s status=%s moved=%s", run_id, status, moved)
    return moved
