"""Opt-out (an inbound STOP): the client leaves every audience and is not sent to any more.

`set_opted_out` is the one way to set or clear the flag (API, admin, import call it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from api.domain.clients import check_phone_list
from api.models import Client

from .clients import cancel_unsent_messages

logger = logging.getLogger(__name__)

OPTED_OUT_ERROR = "client opted out"


@dataclass(frozen=True)
class OptOutResult:
    found: list[str]  # phone numbers of active clients, in the order given
    not_found: list[str]
    changed: int  # clients whose flag this call flipped


@transaction.atomic
def set_opted_out(
    *,
    phone_numbers: Sequence[str] = (),
    client_ids: Sequence[int] = (),
    opted_out: bool = True,
) -> OptOutResult:
    """Opt the active clients with these phone numbers / ids out (or back in, `opted_out=False`).
    Opting out also cancels their unsent messages of runs not yet over. InvalidInput naming
    `phones` for a malformed list. A repeat is a no-op (opted_out_at keeps the first time)."""
    phones = check_phone_list(phone_numbers, field="phones", allow_empty=bool(client_ids))
    clients = Client.objects.filter(phone_number__any_of=phones)
    if client_ids:
        clients = clients | Client.objects.filter(pk__any_of=list(client_ids))
    rows = list(clients.values_list("id", "phone_number"))
    ids = [client_id for client_id, _ in rows]
    now = timezone.now()
    changes = (
        {"opted_out": True, "opted_out_at": now}
        if opted_out
        else {"opted_out": False, "opted_out_at": None}
    )
    changed = (
        Client.objects.filter(pk__any_of=ids)
        .exclude(opted_out=opted_out)
        .update(**changes, updated_at=now)
    )
    if opted_out and ids:
        # A message claimed meanwhile is caught at send time (dispatch/outcomes.before_send).
        cancel_unsent_messages(client_ids=ids, reason=OPTED_OUT_ERROR)
    known = {phone for _, phone in rows}
    result = OptOutResult(
        found=[phone for phone in phones if phone in known],
        not_found=[phone for phone in phones if phone not in known],
        changed=changed,
    )
    logger.info(
        "clients opted %s found=%s not_found=%s changed=%s",
        "out" if opted_out else "in",
        len(ids),
        len(result.not_found),
        changed,
    )
    return result
