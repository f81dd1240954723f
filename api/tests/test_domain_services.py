"""The services do not trust that a serializer ran: called directly (as an import or a script
would), they apply the same domain rules and raise the domain's errors."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from api.domain.errors import CampaignStateConflict, DuplicatePhone, InvalidInput
from api.models import Campaign, CampaignStatus, Client
from api.services import campaigns, clients
from api.tests.factories import CampaignFactory, ClientFactory

pytestmark = pytest.mark.django_db


def campaign_fields(**overrides):
    now = timezone.now()
    fields = {
        "text_message": "Hello",
        "start_datetime": now + timedelta(hours=1),
        "end_datetime": now + timedelta(days=1),
        "tag": "vip",
        "auto_start": False,
    }
    return {**fields, **overrides}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone_number": "7900"}, "phone_number"),
        ({"mobile_operator_code": "٩٠٠"}, "mobile_operator_code"),
        ({"tag": "t" * 65}, "tag"),
        ({"timezone": "localtime"}, "timezone"),
    ],
)
def test_create_client_refuses_a_field_breaking_a_rule_and_writes_nothing(overrides, field):
    fields = {"phone_number": "79000000001", "mobile_operator_code": "900", **overrides}

    with pytest.raises(InvalidInput) as refused:
        clients.create_client(**fields)

    assert refused.value.field == field
    assert not Client.objects.exists()


def test_create_client_with_a_taken_phone_is_duplicate_phone():
    ClientFactory(phone_number="79000000001")

    with pytest.raises(DuplicatePhone):
        clients.create_client(phone_number="79000000001", mobile_operator_code="900")


def test_update_client_changes_only_the_fields_given_and_checks_them():
    client = ClientFactory(phone_number="79000000001", tag="vip", timezone="UTC")

    clients.update_client(client_id=client.pk, tag="gold")
    with pytest.raises(InvalidInput) as refused:
        clients.update_client(client_id=client.pk, timezone="Nowhere")

    client.refresh_from_db()
    assert (client.phone_number, client.tag, client.timezone) == ("79000000001", "gold", "UTC")
    assert refused.value.field == "timezone"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"text_message": " "}, "text_message"),
        ({"end_datetime": timezone.now() - timedelta(minutes=1)}, "end_datetime"),
        ({"time_interval_start": time(10)}, "time_interval_end"),
        ({"tag": ""}, "tag"),
        ({"client_filter": {"phone_numbers": "79000000001"}}, "client_filter"),
    ],
)
def test_create_campaign_refuses_a_campaign_breaking_a_rule_and_writes_nothing(overrides, field):
    with pytest.raises(InvalidInput) as refused:
        campaigns.create_campaign(**campaign_fields(**overrides))

    assert refused.value.field == field
    assert not Campaign.objects.exists()


def test_create_campaign_stores_the_filter_normalized():
    campaign = campaigns.create_campaign(**campaign_fields(client_filter=["900", "gold", "gold"]))

    campaign.refresh_from_db()
    assert campaign.client_filter == {
        "phone_numbers": [],
        "tags": ["gold"],
        "operator_codes": ["900"],
    }


def test_update_campaign_keeps_what_is_not_given_and_refuses_a_change_leaving_no_audience():
    campaign = CampaignFactory(tag="vip", time_interval_start=time(10), time_interval_end=time(19))

    campaigns.update_campaign(campaign_id=campaign.pk, text_message="New text")
    with pytest.raises(InvalidInput) as refused:
        campaigns.update_campaign(campaign_id=campaign.pk, tag="")

    campaign.refresh_from_db()
    assert (campaign.text_message, campaign.tag) == ("New text", "vip")
    assert campaign.time_interval_start == time(10)
    assert refused.value.field == "tag"


def test_update_campaign_may_clear_the_daily_window_with_none():
    campaign = CampaignFactory(time_interval_start=time(10), time_interval_end=time(19))

    campaigns.update_campaign(
        campaign_id=campaign.pk, time_interval_start=None, time_interval_end=None
    )

    campaign.refresh_from_db()
    assert (campaign.time_interval_start, campaign.time_interval_end) == (None, None)


def test_a_text_edit_of_a_campaign_whose_end_has_passed_keeps_that_end():
    now = timezone.now()
    campaign = CampaignFactory(
        start_datetime=now - timedelta(days=2), end_datetime=now - timedelta(days=1)
    )

    campaigns.update_campaign(campaign_id=campaign.pk, text_message="Corrected")

    assert Campaign.objects.get(pk=campaign.pk).text_message == "Corrected"


def test_update_of_a_finished_campaign_is_a_state_conflict():
    campaign = CampaignFactory(status=CampaignStatus.FINISHED)

    with pytest.raises(CampaignStateConflict):
        campaigns.update_campaign(campaign_id=campaign.pk, text_message="Too late")


def test_start_plans_the_run_once_committed(django_capture_on_commit_callbacks):
    client = ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip", status=CampaignStatus.DRAFT)  # started a minute ago

    with django_capture_on_commit_callbacks(execute=True):  # the eager worker plans it
        run = campaigns.start_campaign(campaign_id=campaign.pk)

    run.refresh_from_db()
    assert run.planned_at is not None
    assert list(run.messages.values_list("client_id", flat=True)) == [client.pk]
