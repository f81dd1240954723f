"""The daily report: due days, content from the counters, at most one mail per day, catch-up
of missed or failed days; Django's locmem backend here, a real SMTP server in
test_daily_report_smtp.py."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from api import tasks
from api.models import DailyReport, DailyReportStatus, MessageStatus, RunStatus
from api.services import daily_report
from api.services.daily_report import claims
from api.services.daily_report.schedule import day_bounds, days_to_send, latest_due_day
from api.tests.factories import CampaignRunFactory, MessageFactory

MOSCOW = ZoneInfo("Europe/Moscow")
CLOSED_PORT = 18209  # in this helper's port range; nothing listens on it


@pytest.fixture
def report_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STATS_EMAIL_RECIPIENTS = ["ops@example.com", "lead@example.com"]
    settings.STATS_EMAIL_TIME = "08:00"
    settings.STATS_EMAIL_CATCH_UP_DAYS = 7
    settings.TIME_ZONE = "UTC"
    mail.outbox = []
    return settings


def morning_after(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(hour), tzinfo=ZoneInfo("UTC"))


# --- which days are due --------------------------------------------------------------------
def test_latest_due_day_is_yesterday_once_the_send_time_has_come():
    at = time(8, 0)
    # 04:59 UTC is 07:59 in Moscow: the report of the day before yesterday is the newest due.
    assert latest_due_day(
        datetime(2026, 5, 10, 4, 59, tzinfo=ZoneInfo("UTC")), at=at, zone=MOSCOW
    ) == date(2026, 5, 8)
    assert latest_due_day(
        datetime(2026, 5, 10, 5, 0, tzinfo=ZoneInfo("UTC")), at=at, zone=MOSCOW
    ) == date(2026, 5, 9)


def test_a_day_is_23_hours_long_when_the_clocks_go_forward():
    start, end = day_bounds(date(2026, 3, 8), ZoneInfo("America/New_York"))
    assert end - start == timedelta(hours=23)
    assert start.astimezone(ZoneInfo("UTC")) == datetime(2026, 3, 8, 5, tzinfo=ZoneInfo("UTC"))


def test_first_deploy_sends_only_the_latest_day():
    latest = date(2026, 5, 9)
    assert days_to_send(
        latest=latest, catch_up_days=7, sent=set(), unsent=set(), last_sent=None
    ) == [latest]


def test_days_after_the_last_sent_are_sent_oldest_first_within_the_window():
    latest = date(2026, 5, 9)
    three_days_ago = latest - timedelta(days=3)
    assert days_to_send(
        latest=latest,
        catch_up_days=7,
        sent={three_days_ago},
        unsent=set(),
        last_sent=three_days_ago,
    ) == [date(2026, 5, 7), date(2026, 5, 8), latest]
    long_ago = latest - timedelta(days=40)
    due = days_to_send(latest=latest, catch_up_days=7, sent=set(), unsent=set(), last_sent=long_ago)
    assert due == [latest - timedelta(days=back) for back in range(6, -1, -1)]


def test_a_failed_day_before_the_last_sent_one_is_sent_again():
    latest = date(2026, 5, 9)
    failed = date(2026, 5, 7)
    assert days_to_send(
        latest=latest,
        catch_up_days=7,
        sent={latest, date(2026, 5, 8)},
        unsent={failed},
        last_sent=latest,
    ) == [failed]


# --- content and delivery ------------------------------------------------------------------
def campaign_day_with_messages() -> date:
    """A running run (2 sent, 1 failed, 1 pending) and a run that ended today with 1 sent and
    2 expired; returns today's date (UTC)."""
    running = CampaignRunFactory(campaign__text_message="Spring sale -20%")
    for status, error in [
        (MessageStatus.SENT, ""),
        (MessageStatus.SENT, ""),
        (MessageStatus.FAILED, "gateway answered 400: invalid phone"),
        (MessageStatus.PENDING, ""),
    ]:
        MessageFactory(run=running, status=status, last_error=error)
    ended = CampaignRunFactory(
        campaign__text_message="Weekend",
        campaign__status="finished",
        status=RunStatus.FINISHED,
        finished_at=timezone.now(),
    )
    MessageFactory(run=ended, status=MessageStatus.SENT)
    for _ in range(2):
        MessageFactory(run=ended, status=MessageStatus.EXPIRED, last_error="campaign ended")
    return timezone.now().astimezone(ZoneInfo("UTC")).date()


def test_the_report_mails_counts_failures_and_ended_runs_as_text_and_html(db, report_settings):
    day = campaign_day_with_messages()

    result = daily_report.send_due_reports(now=morning_after(day))

    assert result.sent == [day.isoformat()]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.subject == (
        f"Task Delay Service daily report {day.isoformat()}: 2 campaigns, 3 sent, 1 failed"
    )
    assert "7 messages, 3 sent, 1 pending, 1 failed, 2 expired, 0 cancelled" in message.body
    assert '"Spring sale -20%": 4 total, 2 sent, 1 pending, 1 failed' in message.body
    assert "2 x expired: campaign ended" in message.body
    assert "1 x failed: gateway answered 400: invalid phone" in message.body
    assert "run 1: expired at" in message.body or ": expired at" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "<td>Spring sale -20%</td>" in html and "<strong>expired</strong>" in html
    row = DailyReport.objects.get(day=day)
    assert (row.status, row.attempts, row.recipients) == (DailyReportStatus.SENT, 1, 2)


def test_a_second_run_the_same_day_sends_nothing(db, report_settings):
    day = campaign_day_with_messages()
    daily_report.send_due_reports(now=morning_after(day))
    again = daily_report.send_due_reports(now=morning_after(day, hour=10))
    assert again.sent == [] and len(mail.outbox) == 1


def test_before_the_send_time_yesterday_is_not_due_yet(db, report_settings):
    day = campaign_day_with_messages()
    assert daily_report.send_due_reports(now=morning_after(day, hour=7)).sent == [
        (day - timedelta(days=1)).isoformat()  # the day before: nothing ran, still reported
    ]
    assert DailyReport.objects.filter(day=day).count() == 0


def test_no_recipients_no_report(db, report_settings):
    report_settings.STATS_EMAIL_RECIPIENTS = []
    day = campaign_day_with_messages()
    assert daily_report.send_due_reports(now=morning_after(day)).sent == []
    assert not DailyReport.objects.exists() and mail.outbox == []


def test_days_missed_while_beat_was_down_are_sent_when_it_is_back(db, report_settings):
    today = timezone.now().date()
    DailyReport.objects.create(day=today - timedelta(days=4), status=DailyReportStatus.SENT)
    result = daily_report.send_due_reports(now=morning_after(today))
    expected = [(today - timedelta(days=back)).isoformat() for back in (3, 2, 1, 0)]
    assert result.sent == expected
    assert [m.subject.split()[5].rstrip(":") for m in mail.outbox] == expected


def test_a_failed_send_is_kept_and_sent_by_a_later_run(db, report_settings):
    day = campaign_day_with_messages()
    # A real SMTP connection to a port where nothing listens: refused.
    report_settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    report_settings.EMAIL_HOST, report_settings.EMAIL_PORT = "127.0.0.1", CLOSED_PORT
    failed = daily_report.send_due_reports(now=morning_after(day))
    assert failed.failed == [day.isoformat()]
    row = DailyReport.objects.get(day=day)
    assert row.status == DailyReportStatus.FAILED and "ConnectionRefusedError" in row.last_error

    report_settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retried = daily_report.send_due_reports(now=morning_after(day, hour=10))  # the catch-up
    assert retried.sent == [day.isoformat()] and len(mail.outbox) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (DailyReportStatus.SENT, 2, "")


def test_a_claim_whose_task_died_is_taken_over_after_it_runs_out(db, report_settings):
    day = timezone.now().date()
    now = morning_after(day)
    assert claims.claim_day(day, now=now)
    assert not claims.claim_day(day, now=now + timedelta(seconds=claims.CLAIM_SECONDS - 1))
    assert claims.claim_day(day, now=now + timedelta(seconds=claims.CLAIM_SECONDS + 1))
    assert DailyReport.objects.get(day=day).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_one_mail(report_settings):
    day = campaign_day_with_messages()
    start = threading.Barrier(2)
    results = []

    def beat():
        from django.db import connection

        start.wait()
        try:
            results.append(daily_report.send_due_reports(now=morning_after(day)))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(result.sent) for result in results) == [0, 1]
    assert [m.subject for m in mail.outbox if day.isoformat() in m.subject] and len(
        mail.outbox
    ) == 1


def test_the_beat_task_sends_the_latest_due_day_by_the_clock(db, report_settings):
    result = tasks.send_daily_report()
    latest = latest_due_day(timezone.now(), at=time(8, 0), zone=ZoneInfo("UTC"))
    assert result == {"sent": [latest.isoformat()], "failed": [], "taken_elsewhere": []}
    assert "0 campaigns, 0 sent" in mail.outbox[0].subject
    assert "(no campaign was sending that day)" in mail.outbox[0].body
