"""An audience as a SQL WHERE clause with named parameters, rendered from the domain's
conditions (api/domain/audience.py), the same ones the ORM filter is built from. Planning's
INSERT, the resend-to-failed run and the preview's GROUP BY select their clients with it.

Each list is ONE parameter (a Postgres array, a JSON document on SQLite: see `any_of_sql`),
so a 10,000-phone filter binds one value, not 10,000."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.domain.audience import audience_conditions
from api.message_ids import run_message_ids
from api.models import RESENDABLE_MESSAGE_STATUSES, Campaign, Message

from . import backend
from .sqlite import quote


@dataclass
class Where:
    """A WHERE clause (without the keyword) and its named parameters."""

    sql: str
    params: dict = field(default_factory=dict)

    def __and__(self, other: Where) -> Where:
        return Where(f"{self.sql} AND {other.sql}", {**self.params, **other.params})


def audience_where(campaign: Campaign, *, opted_out: bool | None = False, alias: str = "") -> Where:
    """The campaign's audience over the client table (alias `alias`): active clients matching
    its tag / client_filter, not opted out (`opted_out=True`: only the opted-out ones; None:
    both). Matches nothing when the campaign names no audience."""
    prefix = f"{alias}." if alias else ""
    conditions = audience_conditions(tag=campaign.tag, client_filter=campaign.client_filter)
    if conditions is None:
        return Where("1 = 0")
    sql = backend()
    parts = [f"{prefix}deleted_at IS NULL"]
    params: dict = {}
    if opted_out is not None:
        parts.append(f"{prefix}opted_out = %(audience_opted_out)s")
        params["audience_opted_out"] = opted_out
    for column, values in conditions:
        name, quoted = f"audience_{column}", f"{prefix}{quote(column)}"
        if len(values) == 1:  # the common one-tag campaign: a plain equality, as `IN (x)` is
            parts.append(f"{quoted} = %({name})s")
            params[name] = values[0]
        else:
            parts.append(sql.any_of_sql(quoted, name))
            params[name] = sql.list_param(values)
    return Where(" AND ".join(parts), params)


def failed_in_run_where(run_id: int, *, alias: str = "") -> Where:
    """Clients whose message in the run ended failed or expired (resend to failed): one
    probe of the run's id range (its partition on Postgres)."""
    prefix = f"{alias}." if alias else ""
    low, high = run_message_ids(run_id)
    sql = backend()
    table = quote(Message._meta.db_table)
    return Where(
        f"{prefix}id IN (SELECT client_id FROM {table} WHERE id >= %(failed_low)s"
        f" AND id < %(failed_high)s AND {sql.any_of_sql('status', 'failed_statuses')})",
        {
            "failed_low": low,
            "failed_high": high,
            "failed_statuses": sql.list_param([str(s) for s in RESENDABLE_MESSAGE_STATUSES]),
        },
    )
