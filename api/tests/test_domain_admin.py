"""The admin's forms apply the domain's rules (model validators and clean()), with the same
fields named and the same messages as the API."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from api.domain.audience import NO_AUDIENCE_MESSAGE
from api.models import Campaign, Client
from api.tests.factories import CampaignFactory, ClientFactory

pytestmark = pytest.mark.django_db


def form_errors(response) -> dict:
    assert response.status_code == 200  # the form again, not a redirect to the list
    return response.context["adminform"].form.errors


def campaign_form(**overrides):
    start = timezone.now() + timedelta(hours=1)
    end = start + timedelta(days=1)
    data = {
        "text_message": "Hello",
        "start_datetime_0": start.strftime("%Y-%m-%d"),
        "start_datetime_1": start.strftime("%H:%M:%S"),
        "end_datetime_0": end.strftime("%Y-%m-%d"),
        "end_datetime_1": end.strftime("%H:%M:%S"),
        "time_interval_start": "",
        "time_interval_end": "",
        "tag": "vip",
        "client_filter": "{}",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_a_taken_phone_is_refused_by_the_admin_naming_phone_number(admin_client):
    ClientFactory(phone_number="79000000001")
    body = {"phone_number": "79000000001", "mobile_operator_code": "900", "timezone": "UTC"}

    errors = form_errors(admin_client.post("/admin/api/client/add/", body))

    assert errors["phone_number"] == ["A client with this phone number already exists."]
    assert Client.objects.count() == 1


def test_a_client_keeps_its_own_phone_and_a_deleted_clients_phone_is_free():
    ClientFactory(phone_number="79000000002", deleted_at=timezone.now())
    client = ClientFactory(phone_number="79000000001")

    client.full_clean()
    Client(phone_number="79000000002", mobile_operator_code="900", timezone="UTC").full_clean()


def test_a_campaign_without_an_audience_is_refused_by_the_admin_naming_tag(admin_client):
    response = admin_client.post("/admin/api/campaign/add/", campaign_form(tag=""))

    assert form_errors(response)["tag"] == [NO_AUDIENCE_MESSAGE]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"time_interval_start": "10:00"}, "time_interval_end"),
        ({"time_interval_start": "10:00", "time_interval_end": "10:00"}, "time_interval_end"),
        ({"client_filter": '{"phones": []}'}, "client_filter"),
        ({"end_datetime_0": "2000-01-01"}, "end_datetime"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(admin_client, overrides, field):
    response = admin_client.post("/admin/api/campaign/add/", campaign_form(**overrides))

    assert field in form_errors(response)
    assert not Campaign.objects.exists()


def test_the_admin_stores_the_filter_normalized(admin_client):
    response = admin_client.post(
        "/admin/api/campaign/add/", campaign_form(client_filter='["900", "gold"]')
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    assert Campaign.objects.get().client_filter == {
        "phone_numbers": [],
        "tags": ["gold"],
        "operator_codes": ["900"],
    }


def test_an_admin_edit_may_keep_an_end_that_has_passed():
    now = timezone.now()
    campaign = CampaignFactory(
        start_datetime=now - timedelta(days=2), end_datetime=now - timedelta(days=1)
    )
    campaign.text_message = "Corrected"

    campaign.full_clean()
    campaign.end_datetime = now - timedelta(hours=1)
    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()

    assert refused.value.message_dict == {"end_datetime": ["Must be in the future."]}


def test_the_admin_opts_clients_out_through_the_service(admin_client):
    from api.models import MessageStatus
    from api.tests.factories import CampaignRunFactory, MessageFactory

    client = ClientFactory()
    unsent = MessageFactory(run=CampaignRunFactory(), client=client)
    changelist = "/admin/api/client/"

    admin_client.post(changelist, {"action": "opt_out", "_selected_action": [client.pk]})

    client.refresh_from_db()
    unsent.refresh_from_db()
    assert client.opted_out and client.opted_out_at is not None
    assert unsent.status == MessageStatus.CANCELLED
    admin_client.post(changelist, {"action": "opt_back_in", "_selected_action": [client.pk]})
    client.refresh_from_db()
    assert not client.opted_out and client.opted_out_at is None
    # The form shows the flag but does not write it (only the service does).
    page = admin_client.get(f"/admin/api/client/{client.pk}/change/").content.decode()
    assert 'name="opted_out"' not in page


def test_the_daily_reports_and_sso_identities_are_listed_read_only(admin_client):
    from api.models import DailyReport

    report = DailyReport.objects.create(day=timezone.localdate(), status="sent", recipients=2)
    assert str(report.day.year) in admin_client.get("/admin/api/dailyreport/").content.decode()
    assert admin_client.get("/admin/api/dailyreport/add/").status_code == 403
    assert admin_client.get("/admin/api/singlesignonidentity/").status_code == 200
