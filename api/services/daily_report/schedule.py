"""Which local days are due for a report, as pure functions of the clock and the settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def send_time() -> time:
    """STATS_EMAIL_TIME (HH:MM, validated by the settings) as a time of day."""
    hour, minute = (int(part) for part in settings.STATS_EMAIL_TIME.split(":"))
    return time(hour, minute)


def report_zone() -> ZoneInfo:
    """Days start and end at midnight in DJANGO_TIME_ZONE (settings.TIME_ZONE)."""
    return ZoneInfo(settings.TIME_ZONE)


def latest_due_day(now: datetime, *, at: time, zone: ZoneInfo) -> date:
    """The newest day whose report is due: yesterday once today's send time has come, else
    the day before yesterday."""
    local = now.astimezone(zone)
    days_back = 1 if local.time() >= at else 2
    return local.date() - timedelta(days=days_back)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day's [start, end) in UTC: local midnights, 23 or 25 hours apart on a DST change
    (in UTC, because Python subtracts two times of one zone as wall clocks)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def days_to_send(
    *, latest: date, catch_up_days: int, sent: set[date], unsent: set[date], last_sent: date | None
) -> list[date]:
    """Due days, oldest first, within `catch_up_days` up to `latest`: every day after the last
    one sent (only `latest` when none was ever sent: no back-fill on a first deploy), and
    every day in the window that has a row but was not sent (a failed or abandoned send)."""
    window = [latest - timedelta(days=back) for back in range(max(catch_up_days, 1) - 1, -1, -1)]
    after = last_sent if last_sent is not None else latest - timedelta(days=1)
    return [day for day in window if day not in sent and (day > after or day in unsent)]
