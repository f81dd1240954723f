"""Test sends: POST /api/campaigns/<id>/test/ sends the text now, apart from the stats."""

import logging

import pytest

from api.message_ids import MESSAGE_ID_RUN_STRIDE
from api.models import Message, TestSend
from api.providers import locmem
from api.services.campaign_test_sends import MAX_TEST_PHONES
from api.tests.campaign_helpers import stats
from api.tests.factories import CampaignFactory, ClientFactory


def test_test_send_reaches_the_gateway_with_ids_below_every_run(api, gateway, http_provider):
    ClientFactory(phone_number="79000000001")
    ClientFactory(phone_number="79000000002")
    campaign = CampaignFactory(text_message="Try me")

    response = api.post(
        f"/api/campaigns/{campaign.pk}/test/",
        {"phones": ["79000000001", "79000000002"]},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [(s["phone_number"], s["outcome"]) for s in body] == [
        ("79000000001", "sent"),
        ("79000000002", "sent"),
    ]
    ids = sorted(gateway.delivered_ids)
    assert ids == sorted(s["id"] for s in body)
    assert all(0 < message_id < MESSAGE_ID_RUN_STRIDE for message_id in ids)
    assert {d.text for d in gateway.state.deliveries} == {"Try me"}
    assert TestSend.objects.filter(campaign=campaign, outcome="sent").count() == 2


def test_test_sends_stay_out_of_the_campaign_and_its_stats(api):
    ClientFactory(phone_number="79000000001")
    campaign = CampaignFactory()

    api.post(f"/api/campaigns/{campaign.pk}/test/", {"phones": ["79000000001"]}, format="json")

    assert [sms.phone for sms in locmem.outbox] == ["79000000001"]
    assert Message.objects.count() == 0
    body = stats(api, campaign.pk)
    assert (body["total_messages"], body["status"], body["latest_run"]) == (0, "draft", None)


def test_unknown_phones_are_400_naming_them_masked_and_nothing_is_sent(api):
    ClientFactory(phone_number="79000000001")
    campaign = CampaignFactory()

    response = api.post(
        f"/api/campaigns/{campaign.pk}/test/",
        {"phones": ["79000000001", "79001234567"]},
        format="json",
    )

    assert response.status_code == 400
    assert "7900***4567" in response.json()["phones"][0]
    assert "79001234567" not in response.content.decode()
    assert locmem.outbox == [] and not TestSend.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"phones": []},
        {"phones": "79000000001"},
        {"phones": ["7900000000"]},
        {"phones": [f"790000000{i:02d}" for i in range(MAX_TEST_PHONES + 1)]},
        {},
    ],
)
def test_bad_phone_lists_are_400_naming_phones(api, body):
    ClientFactory.create_batch(MAX_TEST_PHONES + 1)
    campaign = CampaignFactory()

    response = api.post(f"/api/campaigns/{campaign.pk}/test/", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["phones"]
    assert locmem.outbox == []


def test_test_send_of_an_unknown_campaign_is_404(api):
    ClientFactory(phone_number="79000000001")

    response = api.post("/api/campaigns/999999/test/", {"phones": ["79000000001"]}, format="json")

    assert response.status_code == 404
    assert locmem.outbox == []


def test_a_deleted_clients_number_is_unknown(api):
    client = ClientFactory(phone_number="79000000001")
    api.delete(f"/api/clients/{client.pk}/")
    campaign = CampaignFactory()

    response = api.post(
        f"/api/campaigns/{campaign.pk}/test/", {"phones": ["79000000001"]}, format="json"
    )

    assert response.status_code == 400


def test_test_send_logs_the_phone_masked(api, caplog):
    ClientFactory(phone_number="79001234567")
    campaign = CampaignFactory()
    with caplog.at_level(logging.INFO):
        api.post(f"/api/campaigns/{campaign.pk}/test/", {"phones": ["79001234567"]}, format="json")

    assert "7900***4567" in caplog.text
    assert "79001234567" not in caplog.text


def test_an_opted_out_number_gets_no_test_send(api):
    ClientFactory(phone_number="79000000001")
    ClientFactory(phone_number="79000000002", opted_out=True)
    campaign = CampaignFactory()

    response = api.post(
        f"/api/campaigns/{campaign.pk}/test/",
        {"phones": ["79000000001", "79000000002"]},
        format="json",
    )

    assert response.status_code == 400
    assert (
        "opted out" in response.json()["phones"][0] and "7900***0002" in response.content.decode()
    )
    assert locmem.outbox == [] and not TestSend.objects.exists()
