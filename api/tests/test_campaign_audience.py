"""Who a campaign targets: phone numbers, tags and operator codes; deleted clients never."""

from api.models import CampaignRun, CampaignStatus
from api.providers import locmem
from api.tests.campaign_helpers import campaign_body
from api.tests.factories import CampaignFactory, ClientFactory

pytest_plugins = ["api.tests.campaign_fixtures"]


def targeted(api, campaign_id):
    """Client ids the campaign has messages for (what /api/messages shows)."""
    rows = api.get("/api/messages/", {"campaign": campaign_id, "page_size": 1000}).json()
    return sorted(m["client"] for m in rows["results"])


def test_phone_numbers_target_only_those_clients(api, create_started):
    a = ClientFactory(phone_number="79000000001", tag="vip")
    b = ClientFactory(phone_number="79000000002", tag="gold")
    ClientFactory(phone_number="79000000003", tag="vip")

    campaign_id = create_started(
        tag="", client_filter={"phone_numbers": ["79000000001", "79000000002"]}
    )

    assert targeted(api, campaign_id) == [a.pk, b.pk]
    assert sorted(sms.phone for sms in locmem.outbox) == ["79000000001", "79000000002"]


def test_tag_narrows_the_phone_list_and_never_widens_it(api, create_started):
    a = ClientFactory(phone_number="79000000001", tag="vip")
    ClientFactory(phone_number="79000000002", tag="gold")  # listed, wrong tag
    ClientFactory(phone_number="79000000003", tag="vip")  # right tag, not listed

    campaign_id = create_started(
        tag="vip", client_filter={"phone_numbers": ["79000000001", "79000000002"]}
    )

    assert targeted(api, campaign_id) == [a.pk]


def test_operator_codes_narrow_the_tag_audience(api, create_started):
    a = ClientFactory(tag="vip", mobile_operator_code="900")
    ClientFactory(tag="vip", mobile_operator_code="901")
    ClientFactory(tag="gold", mobile_operator_code="900")

    campaign_id = create_started(tag="vip", client_filter={"operator_codes": ["900"]})

    assert targeted(api, campaign_id) == [a.pk]


def test_operator_codes_narrow_the_phone_list(api, create_started):
    a = ClientFactory(phone_number="79000000001", mobile_operator_code="900")
    ClientFactory(phone_number="79000000002", mobile_operator_code="901")

    campaign_id = create_started(
        tag="",
        client_filter={"phone_numbers": ["79000000001", "79000000002"], "operator_codes": ["900"]},
    )

    assert targeted(api, campaign_id) == [a.pk]


def test_tag_and_client_filter_tags_are_a_union(api, create_started):
    a = ClientFactory(tag="vip")
    b = ClientFactory(tag="gold")
    ClientFactory(tag="other")

    campaign_id = create_started(tag="vip", client_filter={"tags": ["gold"]})

    assert targeted(api, campaign_id) == [a.pk, b.pk]


def test_seed_list_form_targets_like_the_dict_form(api, create_started):
    a = ClientFactory(phone_number="79000000001", tag="gold", mobile_operator_code="900")
    ClientFactory(phone_number="79000000002", tag="gold", mobile_operator_code="901")
    ClientFactory(phone_number="79000000003", tag="vip", mobile_operator_code="900")

    campaign_id = create_started(tag="", client_filter=["gold", "900"])

    assert targeted(api, campaign_id) == [a.pk]


def test_deleted_clients_are_never_targeted(api, create_started):
    kept = ClientFactory(tag="vip", phone_number="79000000001")
    gone = ClientFactory(tag="vip", phone_number="79000000002")
    assert api.delete(f"/api/clients/{gone.pk}/").status_code == 204

    by_tag = create_started(tag="vip")
    by_phone = api.post(
        "/api/campaigns/",
        campaign_body(tag="", client_filter={"phone_numbers": ["79000000002"]}),
        format="json",
    )

    assert targeted(api, by_tag) == [kept.pk]
    assert by_phone.status_code == 400
    assert "client_filter" in by_phone.json()
    assert [sms.phone for sms in locmem.outbox] == ["79000000001"]


def test_start_with_an_empty_audience_is_400_and_creates_no_run(api):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="nobody")

    response = api.post(f"/api/campaigns/{campaign.pk}/start/")

    assert response.status_code == 400
    assert "client_filter" in response.json()
    assert not CampaignRun.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_start_when_every_audience_client_was_deleted_is_400(api):
    client = ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip")
    api.delete(f"/api/clients/{client.pk}/")

    response = api.post(f"/api/campaigns/{campaign.pk}/start/")

    assert response.status_code == 400
    assert not CampaignRun.objects.exists()
