"""A client deleted by one request while another updates or deletes it: the late request is a
404, never a 500 (seen under load: Client.DoesNotExist inside update_client)."""

import threading
import time

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from api.domain.errors import NotFound
from api.models import Client
from api.services import clients as client_services
from api.tests.factories import ClientFactory


def test_updating_a_deleted_client_is_not_found_in_the_service(db):
    client = ClientFactory()
    client_services.delete_client(client_id=client.pk)

    with pytest.raises(NotFound) as refused:
        client_services.update_client(client_id=client.pk, tag="late")

    assert refused.value.field == "client"


def test_patch_of_a_deleted_client_is_404(api):
    client = ClientFactory()
    api.delete(f"/api/clients/{client.pk}/")

    response = api.patch(f"/api/clients/{client.pk}/", {"tag": "late"}, format="json")

    assert response.status_code == 404


def _wait_until_blocked_on_a_lock(timeout: float = 10) -> None:
    """Until another backend of this database waits for a row lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second request never waited for the deleting transaction")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "body"), [("patch", {"tag": "late"}), ("put", None), ("delete", None)]
)
def test_a_write_racing_a_committed_delete_is_404(user, method, body):
    # The late request looks the client up (still there), then waits for the row lock the
    # DELETE holds; the DELETE commits; the late request's locked read finds no client.
    client = ClientFactory()
    if method == "put":
        body = {"phone_number": "79000000099", "mobile_operator_code": "900", "tag": "x"}
    deleting, release = threading.Event(), threading.Event()
    answers = {}

    def delete_and_hold():
        try:
            with transaction.atomic():
                client_services.delete_client(client_id=client.pk)
                deleting.set()
                release.wait(10)
        finally:
            connection.close()

    def late_request():
        api = APIClient()
        api.force_authenticate(user)
        try:
            answers["late"] = getattr(api, method)(
                f"/api/clients/{client.pk}/", body, format="json"
            )
        finally:
            connection.close()

    deleter = threading.Thread(target=delete_and_hold)
    deleter.start()
    assert deleting.wait(10)
    late = threading.Thread(target=late_request)
    late.start()
    try:
        _wait_until_blocked_on_a_lock()
    finally:
        release.set()
        deleter.join(10)
        late.join(10)

    assert answers["late"].status_code == 404, answers["late"].content
    assert answers["late"].json() == {"detail": "Client not found."}
    gone = Client.all_objects.get(pk=client.pk)
    assert gone.deleted_at is not None
    assert gone.tag == client.tag  # the late write changed nothing
