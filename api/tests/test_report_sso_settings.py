"""The daily report's and single sign-on's settings, each read in a fresh interpreter from the
environment, and the beat entry that fires the report at STATS_EMAIL_TIME in the service's zone."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHOW = (
    "import django, json; django.setup(); from django.conf import settings as s;"
    "print(json.dumps({'email': s.EMAIL_BACKEND, 'host': s.EMAIL_HOST, 'port': s.EMAIL_PORT,"
    " 'recipients': s.STATS_EMAIL_RECIPIENTS, 'celery_tz': s.CELERY_TIMEZONE,"
    " 'sso': s.OIDC_RP_CLIENT_ID}))"
)
# The next firing of the daily report after 04:00 UTC on 10 May 2026, by Celery's own crontab.
NEXT_REPORT = (
    "import django; django.setup(); from datetime import datetime, UTC;"
    "from Work.celery import app; app.finalize();"
    "schedule = app.conf.beat_schedule['daily report']['schedule'];"
    "now = datetime(2026, 5, 10, 4, 0, tzinfo=UTC); schedule.nowfun = lambda: now;"
    "print(now + schedule.remaining_estimate(now))"
)


def run_settings(script: str, **env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "EMAIL_", "STATS_", "OIDC_", "DATABASE_URL"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="Work.settings", DATA_DIR=str(ROOT / ".data"), **env)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_mail_goes_to_the_console_until_an_smtp_host_is_set():
    default = run_settings(SHOW)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == {
        "email": "django.core.mail.backends.console.EmailBackend",
        "host": "",
        "port": 25,
        "recipients": [],
        "celery_tz": "UTC",
        "sso": "",
    }
    smtp = run_settings(
        SHOW,
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        STATS_EMAIL_RECIPIENTS="a@example.com, b@example.com",
    )
    shown = json.loads(smtp.stdout)
    assert shown["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (shown["host"], shown["port"]) == ("smtp.example.com", 587)
    assert shown["recipients"] == ["a@example.com", "b@example.com"]


def test_the_report_fires_at_stats_email_time_in_the_service_time_zone():
    result = run_settings(NEXT_REPORT, DJANGO_TIME_ZONE="Europe/Moscow", STATS_EMAIL_TIME="07:30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2026-05-10 04:30:00+00:00"  # 07:30 in Moscow (UTC+3)


def test_a_malformed_send_time_refuses_to_start():
    result = run_settings(SHOW, STATS_EMAIL_TIME="25:00")
    assert result.returncode != 0 and "STATS_EMAIL_TIME must be HH:MM" in result.stderr


def test_half_configured_single_sign_on_refuses_to_start():
    result = run_settings(SHOW, OIDC_RP_CLIENT_ID="tds")
    assert result.returncode != 0 and "OIDC_OP_TOKEN_ENDPOINT" in result.stderr
    endpoints = {
        f"OIDC_OP_{name}_ENDPOINT": f"https://idp.example.com/{name.lower()}"
        for name in ("AUTHORIZATION", "TOKEN", "USER")
    }
    no_keys = run_settings(SHOW, OIDC_RP_CLIENT_ID="tds", **endpoints)
    assert no_keys.returncode != 0 and "needs OIDC_OP_JWKS_ENDPOINT" in no_keys.stderr
    no_group = run_settings(
        SHOW,
        OIDC_RP_CLIENT_ID="tds",
        OIDC_OP_JWKS_ENDPOINT="https://idp.example.com/jwks",
        **endpoints,
    )
    assert (
        no_group.returncode != 0 and "OIDC_STAFF_GROUP or OIDC_SUPERUSER_GROUP" in no_group.stderr
    )
    complete = run_settings(
        SHOW,
        OIDC_RP_CLIENT_ID="tds",
        OIDC_OP_JWKS_ENDPOINT="https://idp.example.com/jwks",
        OIDC_STAFF_GROUP="operators",
        **endpoints,
    )
    assert complete.returncode == 0, complete.stderr
    assert json.loads(complete.stdout)["sso"] == "tds"
