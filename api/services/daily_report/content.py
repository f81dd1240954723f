"""What a day's report says: reads only (the selectors of the report).

Counts by status come from the live per-run counters (api/services/counters.py), never from
counting messages. Failures by reason group the failed and expired messages of the day's runs:
that reads those runs' rows (their id ranges, so on Postgres only their partitions), once a
day, off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count, Q
from django.db.models.functions import Substr

from api.message_ids import of_runs
from api.models import (
    OPEN_MESSAGE_STATUSES,
    CampaignRun,
    Message,
    MessageStatus,
    RunStatus,
)
from api.services.counters import empty_counts, run_counts

REASON_LENGTH = 120  # an HTTP error's detail can be 64 KB: group and show its start
TOP_REASONS = 10
MAX_CAMPAIGNS_LISTED = 50


def figures(counts: dict[str, int]) -> dict[str, int]:
    """The report's columns from counts by status (pending: not settled yet)."""
    pending = sum(counts[status] for status in OPEN_MESSAGE_STATUSES)
    settled = ("sent", "failed", "expired", "cancelled")
    return {"total": sum(counts.values()), "pending": pending} | {
        status: counts[status] for status in settled
    }


@dataclass
class CampaignLine:
    campaign_id: int
    text: str
    status: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def figures(self) -> dict[str, int]:
        return figures(self.counts)


@dataclass
class EndedRun:
    campaign_id: int
    run_number: int
    outcome: str  # finished, expired (its end came with messages unsent), cancelled, failed
    finished_at: datetime
    counts: dict[str, int]

    @property
    def figures(self) -> dict[str, int]:
        return figures(self.counts)


@dataclass
class DailyReportContent:
    day: date
    start: datetime
    end: datetime
    campaigns: list[CampaignLine] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=empty_counts)
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    ended: list[EndedRun] = field(default_factory=list)

    @property
    def total_figures(self) -> dict[str, int]:
        return figures(self.totals)

    @property
    def campaigns_listed(self) -> list[CampaignLine]:
        return self.campaigns[:MAX_CAMPAIGNS_LISTED]

    @property
    def campaigns_not_listed(self) -> int:
        return max(0, len(self.campaigns) - MAX_CAMPAIGNS_LISTED)


def day_runs(start: datetime, end: datetime):
    """Runs that could send during [start, end): planned before its end, and not over before
    its start (runs that ended that day without being planned are among `ended`)."""
    return CampaignRun.objects.filter(
        Q(planned_at__lt=end) | Q(finished_at__gte=start, finished_at__lt=end),
        Q(finished_at__isnull=True) | Q(finished_at__gte=start),
    ).select_related("campaign")


def collect_report(*, day: date, start: datetime, end: datetime) -> DailyReportContent:
    """The figures of one day, from the counters and the day's runs. Writes nothing."""
    runs = list(day_runs(start, end).order_by("campaign_id", "number"))
    counts = run_counts(run.id for run in runs)
    content = DailyReportContent(day=day, start=start, end=end)
    lines: dict[int, CampaignLine] = {}
    for run in runs:
        campaign = run.campaign
        line = lines.setdefault(
            campaign.id,
            CampaignLine(campaign.id, campaign.text_message[:60], campaign.status, empty_counts()),
        )
        for status, count in counts[run.id].items():
            line.counts[status] += count
            content.totals[status] += count
        if run.finished_at is not None and start <= run.finished_at < end:
            content.ended.append(_ended_run(run, counts[run.id]))
    content.campaigns = sorted(lines.values(), key=lambda line: (-line.total, line.campaign_id))
    content.failure_reasons = failure_reasons([run.id for run in runs])
    return content


def _ended_run(run: CampaignRun, counts: dict[str, int]) -> EndedRun:
    outcome = run.status
    if run.status == RunStatus.FINISHED and counts[MessageStatus.EXPIRED]:
        outcome = "expired"
    return EndedRun(run.campaign_id, run.number, outcome, run.finished_at, dict(counts))


def failure_reasons(run_ids: list[int]) -> list[tuple[str, int]]:
    """The commonest reasons the runs' failed and expired messages give, most frequent first."""
    if not run_ids:
        return []
    rows = (
        Message.objects.filter(
            of_runs(run_ids), status__in=(MessageStatus.FAILED, MessageStatus.EXPIRED)
        )
        .annotate(reason=Substr("last_error", 1, REASON_LENGTH))
        .values("status", "reason")
        .annotate(count=Count("id"))
        .order_by("-count", "status", "reason")[:TOP_REASONS]
    )
    return [(f"{row['status']}: {row['reason'] or '(no detail)'}", row["count"]) for row in rows]
