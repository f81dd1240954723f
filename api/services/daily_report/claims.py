"""One report per day: the unique DailyReport row is claimed before anything is mailed.

A claim is an INSERT of the day's row, or a guarded UPDATE of a row whose send failed or whose
claim ran out (its task died): of two beats or a redelivered task, exactly one wins. The one
case that can mail twice is a task killed between the SMTP server's "accepted" and marking the
row sent: its claim runs out and the day is sent again, a second copy rather than a lost one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q

from api.models import DailyReport, DailyReportStatus

# How long a claimed send may take before another task may take the day over.
CLAIM_SECONDS = 600
ERROR_LENGTH = 2000


def claim_day(day: date, *, now: datetime) -> bool:
    """Take the day's report for this task; False when it is sent or another task has it."""
    until = now + timedelta(seconds=CLAIM_SECONDS)
    try:
        with transaction.atomic():
            DailyReport.objects.create(
                day=day, status=DailyReportStatus.SENDING, attempts=1, claimed_until=until
            )
        return True
    except IntegrityError:
        pass
    retake = Q(status=DailyReportStatus.FAILED) | Q(
        status=DailyReportStatus.SENDING, claimed_until__lt=now
    )
    taken = DailyReport.objects.filter(retake, day=day).update(
        status=DailyReportStatus.SENDING,
        attempts=F("attempts") + 1,
        claimed_until=until,
        updated_at=now,
    )
    return taken == 1


def mark_sent(day: date, *, now: datetime, recipients: int) -> None:
    DailyReport.objects.filter(day=day, status=DailyReportStatus.SENDING).update(
        status=DailyReportStatus.SENT,
        sent_at=now,
        claimed_until=None,
        recipients=recipients,
        last_error="",
        updated_at=now,
    )


def mark_failed(day: date, *, now: datetime, error: str) -> None:
    DailyReport.objects.filter(day=day, status=DailyReportStatus.SENDING).update(
        status=DailyReportStatus.FAILED,
        claimed_until=None,
        last_error=error[:ERROR_LENGTH],
        updated_at=now,
    )


def report_days(first: date, last: date) -> tuple[set[date], set[date], date | None]:
    """(days sent, days with a row not sent, in [first, last]; the newest day ever sent)."""
    rows = DailyReport.objects.filter(day__gte=first, day__lte=last).values_list("day", "status")
    sent = {day for day, status in rows if status == DailyReportStatus.SENT}
    unsent = {day for day, status in rows if status != DailyReportStatus.SENT}
    last_sent = DailyReport.objects.filter(status=DailyReportStatus.SENT).aggregate(
        newest=Max("day")
    )["newest"]
    return sent, unsent, last_sent
