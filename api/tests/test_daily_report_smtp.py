"""The daily report through Django's SMTP backend to a real SMTP server (aiosmtpd, its own
process, on loopback), read back from the maildir it delivers to."""

from __future__ import annotations

import mailbox
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from api.models import DailyReport, DailyReportStatus
from api.services import daily_report
from api.tests.factories import CampaignRunFactory, MessageFactory

SMTP_PORT = 18225  # in this helper's port range


@pytest.fixture
def smtp_server(tmp_path):
    """aiosmtpd in a subprocess delivering every message to a maildir; yields the maildir."""
    maildir = tmp_path / "maildir"
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and a pinned dev package
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{SMTP_PORT}"]
        + ["-c", "aiosmtpd.handlers.Mailbox", str(maildir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", SMTP_PORT), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"aiosmtpd did not start: {server.stderr.read()!r}"
                    ) from None
                time.sleep(0.1)
        yield mailbox.Maildir(maildir)
    finally:
        server.terminate()
        server.wait(10)


def test_the_report_reaches_a_real_smtp_server_as_text_and_html(db, settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", SMTP_PORT
    settings.DEFAULT_FROM_EMAIL = "reports@tds.example"
    settings.STATS_EMAIL_RECIPIENTS = ["ops@example.com", "lead@example.com"]
    settings.STATS_EMAIL_TIME, settings.TIME_ZONE = "08:00", "UTC"
    run = CampaignRunFactory(campaign__text_message="Autumn <b>sale</b>")
    MessageFactory(run=run, status="sent")
    MessageFactory(run=run, status="failed", last_error="gateway answered 400: bad number")
    day = timezone.now().date()
    now = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo("UTC"))

    result = daily_report.send_due_reports(now=now + timedelta(hours=8))

    assert result.sent == [day.isoformat()]
    received = list(smtp_server)
    assert len(received) == 1
    message = received[0]
    assert message["X-MailFrom"] == "reports@tds.example"
    assert message["X-RcptTo"] == "ops@example.com, lead@example.com"
    assert message["Subject"].replace("\n", "") == (  # unfolded
        f"Task Delay Service daily report {day.isoformat()}: 1 campaign, 1 sent, 1 failed"
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.get_payload()
    }
    assert '"Autumn <b>sale</b>": 2 total, 1 sent, 0 pending, 1 failed' in parts["text/plain"]
    assert "Autumn &lt;b&gt;sale&lt;/b&gt;" in parts["text/html"]  # escaped in the HTML part
    assert "1 &times; failed: gateway answered 400: bad number" in parts["text/html"]
    assert DailyReport.objects.get(day=day).status == DailyReportStatus.SENT
