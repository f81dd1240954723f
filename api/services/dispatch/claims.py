"""Claiming due messages: one statement turns a batch of due rows into leased `sending` rows.

A claim marks the rows `sending` with a lease and a random claim token (Postgres: FOR UPDATE
SKIP LOCKED, so any number of workers on any number of hosts share the work). Outcomes are
written back only where the token still matches: a worker that outlived its lease cannot
overwrite what another worker did since.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from api.message_ids import run_ranges_sql
from api.models import CampaignRun, Client, Message, MessageStatus, RunStatus
from api.services.sql import backend

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ClaimedMessage:
    id: int
    run_id: int
    client_id: int
    attempts: int
    phone: str = ""
    timezone: str = "UTC"
    client_deleted: bool = False
    client_opted_out: bool = False
    token: int = 0  # the claim's token: every write about this message must quote it


# --- claiming -----------------------------------------------------------------------------
def sending_run_ids() -> list[int]:
    """Runs whose pending messages may be claimed: the running ones. A paused or cancelled
    run's pending rows (before reconcile has moved them) simply wait; nothing else is open."""
    return list(
        CampaignRun.objects.filter(status=RunStatus.RUNNING)
        .order_by("id")
        .values_list("id", flat=True)
    )


def claim_statement(
    run_ids: list[int], *, now: datetime, lease_until: datetime, token: int, limit: int
) -> tuple[str, dict]:
    """The claim: one UPDATE ... RETURNING over the running runs' id ranges, and its named
    parameters (claim_due_messages runs it; the EXPLAIN checks in tests and bench read it)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    runs = run_ranges_sql(run_ids)
    due = (
        f"SELECT id FROM {table} WHERE status = %(pending)s AND next_attempt_at <= %(now)s"
        f" AND {runs} ORDER BY next_attempt_at LIMIT %(limit)s"
    )
    sql = (
        f"UPDATE {table} SET status = %(sending)s, lease_expires_at = %(lease_until)s,"
        " claim_token = %(token)s, attempts = attempts + 1"
        f" WHERE {backend().claim_where(due, runs)} RETURNING id, run_id, client_id, attempts"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "pending": MessageStatus.PENDING,
        "sending": MessageStatus.SENDING,
        "now": adapt(now),
        "lease_until": adapt(lease_until),
        "token": token,
        "limit": limit,
    }
    return sql, params


def claim_due_messages(
    *, limit: int, now: datetime | None = None
) -> tuple[int, list[ClaimedMessage]]:
    """Claim up to `limit` due messages of running runs for this worker; returns
    (claim token, messages)."""
    now = now or timezone.now()
    token = secrets.randbits(62)
    run_ids = sending_run_ids()
    if not run_ids:
        return token, []
    lease_until = now + timedelta(seconds=settings.DISPATCH_LEASE_SECONDS)
    sql, params = claim_statement(
        run_ids, now=now, lease_until=lease_until, token=token, limit=limit
    )
    with connection.cursor() as cursor:  # one statement: atomic without a transaction block
        cursor.execute(sql, params)
        claimed = [ClaimedMessage(*row, token=token) for row in cursor.fetchall()]
    return token, claimed


def _load_clients(batch: list[ClaimedMessage]) -> None:
    """Phone, zone, deletion and opt-out of each client, read at send time (not at claim
    time)."""
    rows = Client.all_objects.filter(pk__any_of={m.client_id for m in batch}).values_list(
        "id", "phone_number", "timezone", "deleted_at", "opted_out"
    )
    by_id = {row[0]: row for row in rows}
    for message in batch:
        row = by_id.get(message.client_id)
        if row is None:
            message.client_deleted = True
        else:
            _, message.phone, message.timezone, deleted_at, message.client_opted_out = row
            message.client_deleted = deleted_at is not None
