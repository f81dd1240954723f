"""Opt-out: POST /api/clients/opt-out/, the flag in the API, audiences without opted-out
clients, and the send-time re-check."""

import logging

import pytest

from api.domain.clients import MAX_PHONES_PER_REQUEST
from api.models import Client, Message, MessageStatus
from api.providers import locmem
from api.services import dispatch
from api.services.opt_out import set_opted_out
from api.tests.campaign_helpers import stats
from api.tests.factories import CampaignFactory, ClientFactory, MessageFactory
from api.tests.test_dispatch import deliver_batch, make_campaign

pytest_plugins = ["api.tests.campaign_fixtures"]


def test_opt_out_by_phone_answers_which_were_found_and_sets_the_flag(api):
    alice = ClientFactory(phone_number="79000000001")
    ClientFactory(phone_number="79000000002")

    response = api.post(
        "/api/clients/opt-out/", {"phones": ["79000000001", "79000000009"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "found": ["79000000001"],
        "not_found": ["79000000009"],
        "changed": 1,
    }
    body = api.get(f"/api/clients/{alice.pk}/").json()
    assert body["opted_out"] is True and body["opted_out_at"] is not None
    assert Client.objects.filter(opted_out=True).count() == 1


def test_opt_out_twice_keeps_the_first_time_and_changes_nothing(api):
    client = ClientFactory(phone_number="79000000001")
    api.post("/api/clients/opt-out", {"phones": ["79000000001"]}, format="json")
    first = Client.objects.get(pk=client.pk).opted_out_at

    again = api.post("/api/clients/opt-out", {"phones": [79000000001]}, format="json")

    assert again.json() == {"found": ["79000000001"], "not_found": [], "changed": 0}
    assert Client.objects.get(pk=client.pk).opted_out_at == first


def test_opt_back_in_clears_the_flag(api):
    client = ClientFactory(phone_number="79000000001")
    set_opted_out(phone_numbers=["79000000001"])

    response = api.post(
        "/api/clients/opt-out/", {"phones": ["79000000001"], "opted_out": False}, format="json"
    )

    assert response.json()["changed"] == 1
    stored = Client.objects.get(pk=client.pk)
    assert (stored.opted_out, stored.opted_out_at) == (False, None)


def test_clients_list_filters_by_opted_out(api):
    ClientFactory(phone_number="79000000001")
    ClientFactory(phone_number="79000000002")
    set_opted_out(phone_numbers=["79000000002"])

    out = api.get("/api/clients/", {"opted_out": "true"}).json()["results"]
    still_in = api.get("/api/clients/", {"opted_out": "false"}).json()["results"]

    assert [c["phone_number"] for c in out] == ["79000000002"]
    assert [c["phone_number"] for c in still_in] == ["79000000001"]


def test_opted_out_is_read_only_in_the_client_api(api):
    client = ClientFactory()

    response = api.patch(f"/api/clients/{client.pk}/", {"opted_out": True}, format="json")

    assert response.status_code == 200
    assert Client.objects.get(pk=client.pk).opted_out is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"phones": []}, "at least one"),
        ({"phones": "79000000001"}, "list"),
        ({"phones": ["79000000001", "8900123"]}, "not 7XXXXXXXXXX"),
        ({"phones": [True]}, "not 7XXXXXXXXXX"),
        ({"phones": [{"a": 1}]}, "not 7XXXXXXXXXX"),
        (
            {"phones": [f"790000{i:05d}" for i in range(MAX_PHONES_PER_REQUEST + 1)]},
            "At most",
        ),
        ({}, "required"),
    ],
)
def test_bad_phone_lists_are_400_naming_phones(api, body, expected):
    ClientFactory(phone_number="79000000001")

    response = api.post("/api/clients/opt-out/", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["phones"]
    assert expected in str(response.json()["phones"])
    assert not Client.objects.filter(opted_out=True).exists()  # nothing half-written


def test_bad_phones_are_masked_in_the_error(api):
    response = api.post("/api/clients/opt-out/", {"phones": ["89001234567"]}, format="json")

    assert response.status_code == 400
    assert "89001234567" not in response.content.decode()
    assert "8900***4567" in response.content.decode()


def test_opt_out_never_logs_a_phone_unmasked(api, caplog):
    ClientFactory(phone_number="79001234567")
    with caplog.at_level(logging.DEBUG):
        api.post("/api/clients/opt-out/", {"phones": ["79001234567"]}, format="json")

    assert caplog.records
    assert "79001234567" not in caplog.text


def test_opted_out_clients_are_not_in_the_audience_and_stats_say_how_many(
    api, django_capture_on_commit_callbacks
):
    ClientFactory.create_batch(2, tag="vip")
    ClientFactory(tag="vip", phone_number="79000000009")
    set_opted_out(phone_numbers=["79000000009"])
    campaign = CampaignFactory(tag="vip")

    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/campaigns/{campaign.pk}/start/").status_code == 202

    assert [sms.phone for sms in locmem.outbox if sms.phone == "79000000009"] == []
    body = stats(api, campaign.pk)
    assert body["sent_messages"] == 2
    assert body["latest_run"]["opted_out_clients"] == 1


def test_a_campaign_whose_whole_audience_opted_out_cannot_start(api):
    ClientFactory(tag="vip", phone_number="79000000009")
    set_opted_out(phone_numbers=["79000000009"])
    campaign = CampaignFactory(tag="vip")

    response = api.post(f"/api/campaigns/{campaign.pk}/start/")

    assert response.status_code == 400
    assert list(response.json()) == ["client_filter"]


def test_opting_out_cancels_the_clients_unsent_messages(api):
    client = ClientFactory(phone_number="79000000001")
    sent = MessageFactory(client=client, status=MessageStatus.SENT)
    pending = MessageFactory(client=client, status=MessageStatus.PENDING)
    other = MessageFactory(status=MessageStatus.PENDING)

    api.post("/api/clients/opt-out/", {"phones": ["79000000001"]}, format="json")

    statuses = dict(Message.objects.values_list("id", "status"))
    assert statuses == {
        sent.pk: MessageStatus.SENT,
        pending.pk: MessageStatus.CANCELLED,
        other.pk: MessageStatus.PENDING,
    }
    assert Message.objects.get(pk=pending.pk).last_error == "client opted out"


@pytest.mark.django_db
def test_a_client_opted_out_after_its_message_was_claimed_is_not_sent(gateway, http_provider):
    _, run = make_campaign(clients=2)
    victim = run.messages.first()
    token, batch = dispatch.claim_due_messages(limit=10)
    # Opted out between the claim and the send: the bulk cancel skips a `sending` row, the
    # send-time check catches it.
    set_opted_out(client_ids=[victim.client_id])

    deliver_batch(token, batch, http_provider)

    victim.refresh_from_db()
    assert (victim.status, victim.last_error) == (MessageStatus.CANCELLED, "client opted out")
    assert gateway.state.requests == 1
    assert victim.id not in gateway.delivered_ids


def test_an_unreadable_opted_out_filter_is_400_naming_it(api):
    response = api.get("/api/clients/", {"opted_out": "maybe"})

    assert response.status_code == 400
    assert list(response.json()) == ["opted_out"]


@pytest.mark.parametrize("value", ["yes", "false", 0, 1, "1", [True]])
def test_opted_out_takes_a_json_boolean_only(api, value):
    ClientFactory(phone_number="79000000001")

    body = {"phones": ["79000000001"], "opted_out": value}
    response = api.post("/api/clients/opt-out/", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["opted_out"]
    assert not Client.objects.filter(opted_out=True).exists()
