"""The daily report: last day's campaigns mailed to STATS_EMAIL_RECIPIENTS, once per day.

Beat runs `send_due_reports` at STATS_EMAIL_TIME and again every STATS_EMAIL_CATCH_UP_SECONDS:
each run sends every due day not sent yet (a day missed while beat was down, a send that
failed), at most STATS_EMAIL_CATCH_UP_DAYS back, each day claimed first (claims.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from . import claims, schedule
from .content import DailyReportContent, collect_report

logger = logging.getLogger(__name__)


@dataclass
class ReportRun:
    sent: list[str] = field(default_factory=list)  # ISO days
    failed: list[str] = field(default_factory=list)
    taken_elsewhere: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "taken_elsewhere": self.taken_elsewhere}


def send_due_reports(*, now: datetime | None = None) -> ReportRun:
    """Mail every due day's report that is not sent yet, oldest first. Safe to run any number
    of times at once: each day is claimed before it is mailed."""
    now = now or timezone.now()
    run = ReportRun()
    recipients = list(settings.STATS_EMAIL_RECIPIENTS)
    if not recipients:
        return run
    for day in due_days(now=now):
        if not claims.claim_day(day, now=now):
            run.taken_elsewhere.append(day.isoformat())
            continue
        try:
            send_report(day=day, recipients=recipients)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the day for a later run
            claims.mark_failed(day, now=timezone.now(), error=f"{type(exc).__name__}: {exc}")
            logger.warning("daily report %s not sent: %s", day, type(exc).__name__)
            run.failed.append(day.isoformat())
            continue
        claims.mark_sent(day, now=timezone.now(), recipients=len(recipients))
        logger.info("daily report %s sent to %s recipients", day, len(recipients))
        run.sent.append(day.isoformat())
    return run


def due_days(*, now: datetime) -> list[date]:
    """Days whose report is due and not sent, within the catch-up window, oldest first."""
    latest = schedule.latest_due_day(now, at=schedule.send_time(), zone=schedule.report_zone())
    window = settings.STATS_EMAIL_CATCH_UP_DAYS
    sent, unsent, last_sent = claims.report_days(latest - timedelta(days=window), latest)
    return schedule.days_to_send(
        latest=latest, catch_up_days=window, sent=sent, unsent=unsent, last_sent=last_sent
    )


def send_report(*, day: date, recipients: list[str]) -> None:
    """Collect the day's figures and mail them (HTML and plain text); raises if the mail
    backend does."""
    start, end = schedule.day_bounds(day, schedule.report_zone())
    content = collect_report(day=day, start=start, end=end)
    message = build_message(content, recipients=recipients)
    message.send(fail_silently=False)


def build_message(content: DailyReportContent, *, recipients: list[str]) -> EmailMultiAlternatives:
    totals, campaigns = content.totals, len(content.campaigns)
    subject = (
        f"Task Delay Service daily report {content.day.isoformat()}: "
        f"{campaigns} campaign{'' if campaigns == 1 else 's'}, "
        f"{totals['sent']} sent, {totals['failed']} failed"
    )
    context = {"report": content, "zone": settings.TIME_ZONE, "subject": subject}
    text = render_to_string("reports/daily_report.txt", context)
    html = render_to_string("reports/daily_report.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
    message.attach_alternative(html, "text/html")
    return message
