"""When a dispatcher next has work, and the one wake-up each worker process asks for."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from api.message_ids import of_runs
from api.models import LIVE_RUN_STATUSES, CampaignRun, Message, MessageStatus

from .claims import sending_run_ids

# A wake-up is never sooner than this after the check (no busy loop on a row another worker
# holds) and only for what falls due before the next sweep (no long countdowns on the broker).
MIN_WAKEUP_SECONDS = 1.0


def next_due_at() -> datetime | None:
    """When a dispatcher next has work: the earliest pending message of a running run, or the
    earliest lease to run out in a live run (a dead worker's messages to hand back). None:
    nothing pending or leased. One probe of each running run's due index and lease index."""
    pending = Message.objects.filter(of_runs(sending_run_ids()), status=MessageStatus.PENDING)
    due = pending.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    live = CampaignRun.objects.filter(status__in=LIVE_RUN_STATUSES)
    leased = Message.objects.filter(
        of_runs(list(live.values_list("id", flat=True))), status=MessageStatus.SENDING
    )
    lease = leased.order_by("lease_expires_at").values_list("lease_expires_at", flat=True).first()
    return min((moment for moment in (due, lease) if moment is not None), default=None)


class WakeupSchedule:
    """The dispatch wake-up this worker process has already asked the broker for: at most one
    pending per process, replaced only by an earlier one (Celery's tasks in one process share
    it, hence the lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake_at: datetime | None = None

    def claim_wakeup(self, *, now: datetime | None = None) -> float | None:
        """Seconds until a dispatcher should wake for the next pending message, if that comes
        before beat's next sweep and this process has not already asked for an earlier
        wake-up; None otherwise. A countdown returned is recorded as asked for."""
        now = now or timezone.now()
        due = next_due_at()
        if due is None:
            return None
        delay = max((due - now).total_seconds(), MIN_WAKEUP_SECONDS)
        if delay >= settings.DISPATCH_INTERVAL_SECONDS:
            return None
        when = now + timedelta(seconds=delay)
        with self.lock:
            if self.wake_at is not None and now < self.wake_at <= when:
                return None
            self.wake_at = when
        return delay


# One per worker process: the wake-ups it has asked for.
wakeups = WakeupSchedule()
