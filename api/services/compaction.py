"""Keep the message table's partitions few: settled runs are merged into blocks (Postgres).

Planning gives every run its own partition (api/services/sql/partitions.py). A query that
names no run (an unfiltered message list, the all-campaign stats) plans and locks every
partition, and Postgres's lock table holds about `max_locks_per_transaction` x
`max_connections` locks (6,400 by default): a few thousand runs would make such queries fail
with "out of shared memory". So beat merges the partitions of runs whose messages can no
longer change into blocks of many runs each, one transaction per block. Run ids only grow, so
settled runs are a prefix of the id space: every run below the first unsettled one.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import OperationalError
from django.db.models import Max, Min, Q
from django.utils import timezone

from api.message_ids import MESSAGE_ID_RUN_STRIDE
from api.models import ACTIVE_RUN_STATUSES, CampaignRun, RunStatus
from api.services.sql import backend, partitions

from .dispatch import CANCELLED_RUN_REAP_WINDOW

logger = logging.getLogger(__name__)

SMALL_RUN_ROWS = 200_000  # a run with more messages keeps a partition of its own
BLOCK_MAX_ROWS = 2_000_000  # one block's copy stays a few seconds
BLOCK_MAX_RUNS = 1_000
MIN_BLOCK_PARTITIONS = 16  # fewer is not worth a rewrite


def settled_boundary(now: datetime) -> int:
    """The lowest run id whose messages may still change; every run below it is settled
    (finished, failed, or cancelled long enough ago that no lease can still be reaped)."""
    unsettled = CampaignRun.objects.filter(
        Q(status__in=ACTIVE_RUN_STATUSES)
        | Q(status=RunStatus.CANCELLED, finished_at__isnull=True)
        | Q(status=RunStatus.CANCELLED, finished_at__gte=now - CANCELLED_RUN_REAP_WINDOW)
    ).aggregate(first=Min("id"))["first"]
    if unsettled is not None:
        return unsettled
    return (CampaignRun.objects.aggregate(top=Max("id"))["top"] or 0) + 1


def blocks_to_merge(
    parts: list[partitions.Partition], boundary_run: int, *, min_partitions: int
) -> list[list[partitions.Partition]]:
    """Runs of consecutive small single-run partitions below the boundary, cut at big runs,
    existing blocks and the block limits; only those with at least `min_partitions`."""
    limit = boundary_run * MESSAGE_ID_RUN_STRIDE
    blocks: list[list[partitions.Partition]] = []
    current: list[partitions.Partition] = []
    rows = 0.0

    def close() -> None:
        if len(current) >= min_partitions:
            blocks.append(list(current))
        current.clear()

    for part in parts:
        if part.high > limit:
            break
        size = max(part.rows, 0.0)
        small = part.single_run and size < SMALL_RUN_ROWS
        if not small or len(current) >= BLOCK_MAX_RUNS or rows + size > BLOCK_MAX_ROWS:
            close()
            rows = 0.0
        if small:
            current.append(part)
            rows += size
    close()
    return blocks


def compact_settled_runs(
    *, now: datetime | None = None, min_partitions: int = MIN_BLOCK_PARTITIONS
) -> list[str]:
    """Merge settled runs' partitions into blocks; returns the new blocks' names."""
    if not backend().partitioned:
        return []
    boundary = settled_boundary(now or timezone.now())
    merged = []
    for block in blocks_to_merge(backend().partitions(), boundary, min_partitions=min_partitions):
        try:
            name = partitions.merge_partitions(block)
        except OperationalError as exc:  # the lock timeout: busy; the next pass retries
            logger.warning("compaction postponed: %s", str(exc).splitlines()[0])
            break
        logger.info(
            "merged %s settled runs' partitions (runs %s-%s) into %s",
            len(block),
            block[0].first_run,
            block[-1].last_run,
            name,
        )
        merged.append(name)
    return merged
