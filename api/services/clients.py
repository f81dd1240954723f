"""Client writes: create, update, soft delete."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

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


def create_client(*, fields: dict) -> Client:
    """Create a client; a phone number already in use is DuplicatePhone."""
    try:
        with transaction.atomic():
            return Client.objects.create(**fields)
    except IntegrityError:  # the partial unique index settles a race between two requests
        raise DuplicatePhone() from None


def update_client(*, client_id: int, fields: dict) -> Client:
    """Change a client's fields; its planned messages keep the phone/zone read at send time."""
    try:
        with transaction.atomic():
            client = Client.objects.select_for_update().get(pk=client_id)
            for name, value in fields.items():
                setattr(client, name, value)
            client.save()
            return client
    except IntegrityError:
        raise DuplicatePhone() from None


@transaction.atomic
def delete_client(*, client_id: int) -> None:
    """Soft-delete: the client leaves every audience, its unsent messages are cancelled and
    its message history stays. The phone number becomes free for a new client."""
    now = timezone.now()
    updated = Client.objects.filter(pk=client_id).update(deleted_at=now, updated_at=now)
    if not updated:
        raise NotFound("Client not found.", field="client")
    # Unsent messages live only in runs that are not over; the client's message in each is
    # one primary-key lookup (its id is derived from run and client).
    open_runs = CampaignRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).values_list(
        "id", flat=True
    )
    Message.objects.filter(
        pk__any_of=[message_id(run_id, client_id) for run_id in open_runs],
        status__in=UNSENT_MESSAGE_STATUSES,
    ).update(status=MessageStatus.CANCELLED, last_error="client deleted")
