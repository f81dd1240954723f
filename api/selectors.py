"""Read side: who a campaign targets and how its messages stand. Pure queries, no writes."""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum

from .models import Campaign, CampaignRun, Client, MessageStatus, RunStatusCount


def normalize_client_filter(raw) -> dict[str, list[str]]:
    """The filter as a dict of three lists; the seed's list form is a list of phone numbers
    (3-digit items read as operator codes, anything else as tags)."""
    result: dict[str, list[str]] = {"phone_numbers": [], "tags": [], "operator_codes": []}
    if not raw:
        return result
    if isinstance(raw, list | tuple):
        for item in raw:
            text = str(item).strip()
            if text.isdigit() and len(text) == 11:
                result["phone_numbers"].append(text)
            elif text.isdigit() and len(text) == 3:
                result["operator_codes"].append(text)
            elif text:
                result["tags"].append(text)
        return result
    for key in result:
        result[key] = [str(value).strip() for value in raw.get(key) or [] if str(value).strip()]
    return result


def campaign_tags(campaign: Campaign) -> list[str]:
    tags = list(normalize_client_filter(campaign.client_filter)["tags"])
    if campaign.tag:
        tags.insert(0, campaign.tag)
    return list(dict.fromkeys(tags))


def audience_filter(*, tag: str, client_filter) -> Q | None:
    """The seed's rules as one WHERE clause; None when the campaign names no audience.

    Phone numbers, when given, are the audience and tags/operator codes only narrow it;
    otherwise the audience is the clients with one of the tags, narrowed by operator codes.
    """
    filters = normalize_client_filter(client_filter)
    tags = list(dict.fromkeys(([tag] if tag else []) + filters["tags"]))
    if filters["phone_numbers"]:
        condition = Q(phone_number__in=filters["phone_numbers"])
        if tags:
            condition &= Q(tag__in=tags)
    elif tags:
        condition = Q(tag__in=tags)
    else:
        return None
    if filters["operator_codes"]:
        condition &= Q(mobile_operator_code__in=filters["operator_codes"])
    return condition


def campaign_audience(campaign: Campaign) -> QuerySet[Client]:
    """Active (not deleted) clients the campaign targets; empty when it names no audience."""
    condition = audience_filter(tag=campaign.tag, client_filter=campaign.client_filter)
    if condition is None:
        return Client.objects.none()
    return Client.objects.filter(condition)


def client_timezones() -> list[str]:
    """Every time zone any client row names (deleted ones too: a superset of any audience's).

    Postgres: a loose index scan over client_timezone_idx, one probe per distinct zone (a few
    hundred at most), whatever the number of clients; a plain DISTINCT elsewhere.
    """
    table = connection.ops.quote_name(Client._meta.db_table)
    if connection.vendor == "postgresql":
        sql = (
            "WITH RECURSIVE zones (name) AS ("
            f" (SELECT timezone FROM {table} ORDER BY timezone LIMIT 1)"
            " UNION ALL"
            f" SELECT (SELECT timezone FROM {table} WHERE timezone > zones.name"
            "  ORDER BY timezone LIMIT 1) FROM zones WHERE zones.name IS NOT NULL"
            ") SELECT name FROM zones WHERE name IS NOT NULL"
        )
    else:
        sql = f"SELECT DISTINCT timezone FROM {table}"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def _empty_counts() -> dict[str, int]:
    return {status: 0 for status in MessageStatus.values}


def _stats_from_counts(by_status: dict[str, int]) -> dict:
    return {
        "total_messages": sum(by_status.values()),
        "sent_messages": by_status[MessageStatus.SENT],
        "pending_messages": by_status[MessageStatus.PENDING]
        + by_status[MessageStatus.SENDING]
        + by_status[MessageStatus.PAUSED],
        "failed_messages": by_status[MessageStatus.FAILED],
        "expired_messages": by_status[MessageStatus.EXPIRED],
        "cancelled_messages": by_status[MessageStatus.CANCELLED],
        "by_status": by_status,
    }


RUN_SUMMARY_FIELDS = (
    "id",
    "number",
    "status",
    "planned_messages",
    "skipped_clients",
    "created_at",
    "finished_at",
)


def latest_runs(campaign_ids=None) -> dict[int, dict]:
    """Each campaign's newest run as a summary dict, in one query (only those rows are read;
    Postgres: DISTINCT ON over the (campaign, number) unique index)."""
    runs = CampaignRun.objects.all()
    if campaign_ids is not None:
        runs = runs.filter(campaign_id__in=campaign_ids)
    if connection.vendor == "postgresql":
        runs = runs.order_by("campaign_id", "-number").distinct("campaign_id")
    else:
        newest_number = (
            CampaignRun.objects.filter(campaign_id=OuterRef("campaign_id"))
            .order_by("-number")
            .values("number")[:1]
        )
        runs = runs.filter(number=Subquery(newest_number)).order_by()
    return {row.pop("campaign_id"): row for row in runs.values("campaign_id", *RUN_SUMMARY_FIELDS)}


def campaign_stats(campaign: Campaign) -> dict:
    """Message counts of every run of the campaign, by status, plus the latest run. Read from
    the per-run counters (api/services/counters.py): exact and current, O(runs)."""
    by_status = _empty_counts()
    rows = (
        RunStatusCount.objects.filter(run__campaign_id=campaign.id)
        .values_list("status")
        .annotate(total=Sum("count"))
        .order_by()
    )
    for status, total in rows:
        by_status[status] = int(total)
    stats = {"campaign_id": campaign.id, "status": campaign.status}
    stats.update(_stats_from_counts(by_status))
    stats["latest_run"] = latest_runs([campaign.id]).get(campaign.id)
    return stats


def all_campaign_stats() -> list[dict]:
    """campaign_stats for every campaign, from one grouped query over the run counters."""
    counts: dict[int, dict[str, int]] = defaultdict(_empty_counts)
    rows = (
        RunStatusCount.objects.values_list("run__campaign_id", "status")
        .annotate(total=Sum("count"))
        .order_by()
    )
    for campaign_id, status, total in rows:
        counts[campaign_id][status] = int(total)
    runs = latest_runs()
    result = []
    for campaign_id, status in Campaign.objects.order_by("id").values_list("id", "status"):
        stats = {"campaign_id": campaign_id, "status": status}
        stats.update(_stats_from_counts(counts[campaign_id]))
        stats["latest_run"] = runs.get(campaign_id)
        result.append(stats)
    return result
