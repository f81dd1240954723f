"""Read side: a campaign's audience preview, before (or between) starts. Writes nothing.

One grouped statement counts the audience by (time zone, operator code, opted out), using the
same WHERE as planning (api/services/sql/where.py); the per-zone sending instants come from
planning's own function (planning.planned_times), so the preview says what a start now would
plan. Cost: one scan of the audience's clients, whatever their number (bench/bench_preview.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db import connection
from django.utils import timezone

from api.domain.clients import check_timezone
from api.domain.errors import InvalidInput
from api.models import Campaign, Client
from api.services.planning import planned_times
from api.services.send_window import zone
from api.services.sql.where import audience_where


def _group_counts(campaign: Campaign) -> list[tuple[str, str, bool, int]]:
    where = audience_where(campaign, opted_out=None, alias="audience")
    table = connection.ops.quote_name(Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT audience.timezone, audience.mobile_operator_code, audience.opted_out,"
            f" COUNT(*) FROM {table} AS audience WHERE {where.sql}"
            " GROUP BY audience.timezone, audience.mobile_operator_code, audience.opted_out",
            where.params,
        )
        return [(tz, code, bool(opted), count) for tz, code, opted, count in cursor.fetchall()]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _hour(moment: datetime, zone_name: str) -> str:
    local = moment.astimezone(zone(zone_name)).replace(minute=0, second=0, microsecond=0)
    return _iso(local)


def _histogram(per_zone: Counter, times: dict[str, datetime], zone_name: str) -> list[dict]:
    hours: Counter = Counter()
    for name, count in per_zone.items():
        if name in times:
            hours[_hour(times[name], zone_name)] += count
    return [{"hour": hour, "messages": hours[hour]} for hour in sorted(hours)]


def audience_preview(campaign: Campaign, tz_name: str) -> dict:
    """Who a start of `campaign` now would send to, and when; InvalidInput naming `tz` for an
    unknown zone. A plain JSON-ready dict:

    {"campaign_id": int, "generated_at": ISO UTC, "timezone": tz_name,
     "total": clients in the audience (active, not opted out),
     "planned": of them, those who get a message (total - skipped_no_window),
     "skipped_no_window": in zones whose window never opens before the campaign ends,
     "opted_out": clients the audience would hold but for their opt-out (not in total),
     "by_timezone": [{"timezone": str, "clients": int,
                      "planned_send_at": ISO UTC or None (skipped)}, ...] by zone name,
     "by_operator_code": [{"operator_code": str, "clients": int}, ...] by code,
     "histogram_utc": [{"hour": "YYYY-MM-DDTHH:00:00Z", "messages": int}, ...] by hour,
     "histogram_local": [{"hour": "YYYY-MM-DDTHH:00:00+03:00", "messages": int}, ...]}

    The histograms count planned sends (each message's planned_send_at) per hour in UTC and
    in `tz_name` (the operator's zone); the rate limit may spread a large hour further.
    """
    try:
        check_timezone(tz_name)
    except InvalidInput as error:
        raise InvalidInput(error.message, field="tz") from None
    now = timezone.now()
    per_zone: Counter = Counter()
    per_code: Counter = Counter()
    opted_out = 0
    for zone_name, code, is_opted_out, count in _group_counts(campaign):
        if is_opted_out:
            opted_out += count
        else:
            per_zone[zone_name] += count
            per_code[code] += count
    times = planned_times(campaign, sorted(per_zone), now)
    total = sum(per_zone.values())
    skipped = sum(count for name, count in per_zone.items() if name not in times)
    return {
        "campaign_id": campaign.pk,
        "generated_at": _iso(now),
        "timezone": tz_name,
        "total": total,
        "planned": total - skipped,
        "skipped_no_window": skipped,
        "opted_out": opted_out,
        "by_timezone": [
            {
                "timezone": name,
                "clients": per_zone[name],
                "planned_send_at": _iso(times[name]) if name in times else None,
            }
            for name in sorted(per_zone)
        ],
        "by_operator_code": [
            {"operator_code": c, "clients": per_code[c]} for c in sorted(per_code)
        ],
        "histogram_utc": _histogram(per_zone, times, "UTC"),
        "histogram_local": _histogram(per_zone, times, tz_name),
    }
