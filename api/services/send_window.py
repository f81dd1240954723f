"""When may a client receive a campaign's message: the daily window in the client's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Names are validated on write; an unknown one left in the table is treated as UTC
        # rather than stalling the whole campaign.
        return ZoneInfo("UTC")


def in_window(local: time, window_start: time | None, window_end: time | None) -> bool:
    """Whether a local wall-clock time lies in [start, end); start > end wraps midnight."""
    if window_start is None or window_end is None:
        return True
    if window_start < window_end:
        return window_start <= local < window_end
    return local >= window_start or local < window_end


def _opening(day: date, window_start: time, tz: ZoneInfo) -> datetime:
    """The first real instant whose local wall time on `day` is at or after window_start.

    On a spring-forward day the wall time may not exist (02:30 in a 02:00-03:00 gap): the first
    instant in the window is then the transition itself, found by bisection between the two
    readings of the missing wall time.
    """
    earlier = datetime.combine(day, window_start, tzinfo=tz).replace(fold=1)
    later = earlier.replace(fold=0)
    earlier_utc, later_utc = earlier.astimezone(UTC), later.astimezone(UTC)
    if earlier_utc >= later_utc:  # an ordinary or a repeated (fall-back) wall time
        return min(earlier_utc, later_utc)
    low, high = earlier_utc, later_utc  # a gap: low reads before window_start, high after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        local = middle.astimezone(tz)
        if local.date() == day and local.time() >= window_start:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def next_send_time(
    *,
    not_before: datetime,
    end: datetime,
    window_start: time | None,
    window_end: time | None,
    timezone_name: str,
) -> datetime | None:
    """The first instant >= not_before inside the client's local window and before `end`.

    None when the window never opens before the end. All datetimes are aware; the result is UTC.
    """
    moment = not_before.astimezone(UTC)
    if moment >= end:
        return None
    if window_start is None or window_end is None:
        return moment
    tz = zone(timezone_name)
    local = moment.astimezone(tz)
    if in_window(local.time().replace(tzinfo=None), window_start, window_end):
        return moment
    day = local.date()
    # The window opens today (later) or tomorrow; two extra days cover DST edge cases.
    for offset in range(4):
        opening = _opening(day + timedelta(days=offset), window_start, tz)
        if opening > moment:
            return opening if opening < end else None
    return None  # pragma: no cover - a window opens within any three days
