"""Client writes: create, update, soft delete."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.timezone import now

from api.domain.changes import UNCHANGED, Unchanged, given
from api.domain.clients import check_client
from api.domain.errors import DuplicatePhone, NotFound
from api.message_ids import message_id
from api.models import (
    ACTIVE_RUN_STATUSES,
    UNSENT_MESSAGE_STATUSES,
    CampaignRun,
    Client,
    Message,
    MessageStatus,
)


def create_client(
    *, phone_number: str, mobile_operator_code: str, tag: str = "", timezone: str = "UTC"
) -> Client:
    """Create a client (InvalidInput if a field breaks a client rule); a phone number already
    in use by an active client is DuplicatePhone. Not idempotent: a repeat is a duplicate."""
    fields = {
        "phone_number": phone_number,
        "mobile_operator_code": mobile_operator_code,
        "tag": tag,
        "timezone": timezone,
    }
    check_client(**fields)
    try:
        with transaction.atomic():
            return Client.objects.create(**fields)
    except IntegrityError:  # the partial unique index settles a race between two requests
        raise DuplicatePhone() from None


def update_client(
    *,
    client_id: int,
    phone_number: str | Unchanged = UNCHANGED,
    mobile_operator_code: str | Unchanged = UNCHANGED,
    tag: str | Unchanged = UNCHANGED,
    timezone: str | Unchanged = UNCHANGED,
) -> Client:
    """Change the fields given (checked as on create); the client's planned messages keep the
    phone/zone read at send time. A repeat is harmless."""
    changes = given(
        phone_number=phone_number,
        mobile_operator_code=mobile_operator_code,
        tag=tag,
        timezone=timezone,
    )
    check_client(**changes)
    try:
        with transaction.atomic():
            # A DELETE that committed after the caller looked the client up makes the locked
            # read find nothing (Postgres re-checks `deleted_at IS NULL` once the lock is
            # free): the client is gone, not a server error.
            client = Client.objects.select_for_update().filter(pk=client_id).first()
            if client is None:
                raise NotFound("Client not found.", field="client")
            for name, value in changes.items():
                setattr(client, name, value)
            client.save()
            return client
    except IntegrityError:
        raise DuplicatePhone() from None


@transaction.atomic
def delete_client(*, client_id: int) -> None:
    """Soft-delete: the client leaves every audience, its unsent messages are cancelled and
    its message history stays. The phone number becomes free for a new client."""
    deleted_at = now()
    updated = Client.objects.filter(pk=client_id).update(
        deleted_at=deleted_at, updated_at=deleted_at
    )
    if not updated:
        raise NotFound("Client not found.", field="client")
    cancel_unsent_messages(client_ids=[client_id], reason="client deleted")


def cancel_unsent_messages(*, client_ids: list[int], reason: str) -> int:
    """Cancel the clients' unsent messages (`reason` as last_error); returns how many. Safe to
    repeat. A message claimed meanwhile is caught by the send-time check."""
    # Unsent messages live only in runs that are not over; a client's message in each is
    # one primary-key lookup (its id is derived from run and client).
    open_runs = CampaignRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).values_list(
        "id", flat=True
    )
    ids = [message_id(run_id, client_id) for run_id in open_runs for client_id in client_ids]
    if not ids:
        return 0
    return Message.objects.filter(pk__any_of=ids, status__in=UNSENT_MESSAGE_STATUSES).update(
        status=MessageStatus.CANCELLED, last_error=reason
    )
