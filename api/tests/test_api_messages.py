"""Messages over HTTP: read-only, filters that really filter, cursor pagination."""

from urllib.parse import urlsplit

import pytest

from api.models import Message, MessageStatus
from api.tests.factories import CampaignRunFactory, ClientFactory, MessageFactory


def _relative(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _ids(response):
    assert response.status_code == 200, response.content
    return sorted(m["id"] for m in response.json()["results"])


@pytest.fixture
def messages(db):
    """Two campaigns (the first with two runs), two clients, a mix of statuses."""
    alice, bob = ClientFactory(), ClientFactory()
    run_a1 = CampaignRunFactory()
    run_a2 = CampaignRunFactory(campaign=run_a1.campaign)
    run_b = CampaignRunFactory()
    return {
        "clients": (alice, bob),
        "runs": (run_a1, run_a2, run_b),
        "a1_alice": MessageFactory(run=run_a1, client=alice, status=MessageStatus.CANCELLED),
        "a1_bob": MessageFactory(run=run_a1, client=bob, status=MessageStatus.SENT),
        "a2_alice": MessageFactory(run=run_a2, client=alice, status=MessageStatus.SENT),
        "b_alice": MessageFactory(run=run_b, client=alice, status=MessageStatus.PENDING),
        "b_bob": MessageFactory(run=run_b, client=bob, status=MessageStatus.FAILED),
    }


def test_list_messages_shows_every_message_with_its_campaign(api, messages):
    response = api.get("/api/messages/")

    assert response.status_code == 200
    rows = {m["id"]: m for m in response.json()["results"]}
    assert len(rows) == 5
    row = rows[messages["b_bob"].pk]
    assert row["campaign"] == messages["runs"][2].campaign_id
    assert row["run"] == messages["runs"][2].pk
    assert row["client"] == messages["clients"][1].pk
    assert row["status"] == "failed"
    assert {
        "planned_send_at",
        "next_attempt_at",
        "attempts",
        "last_error",
        "sent_at",
        "created_at",
    } <= set(row)


@pytest.mark.parametrize("suffix", ["/", ""])
def test_retrieve_message(api, messages, suffix):
    message = messages["a2_alice"]

    response = api.get(f"/api/messages/{message.pk}{suffix}")

    assert response.status_code == 200
    assert response.json()["id"] == message.pk
    assert response.json()["status"] == "sent"
    assert response.json()["sent_at"] is not None


def test_retrieve_unknown_message_is_404_json(api, db):
    response = api.get("/api/messages/987654/")

    assert response.status_code == 404
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "detail"),
    [("post", False), ("put", True), ("patch", True), ("delete", True), ("post", True)],
)
def test_messages_are_read_only(api, messages, method, detail):
    message = messages["b_alice"]
    path = f"/api/messages/{message.pk}/" if detail else "/api/messages/"

    response = getattr(api, method)(path, {"status": "sent"}, format="json")

    assert response.status_code == 405
    assert response.json()["detail"]
    assert Message.objects.count() == 5
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING


def test_filter_by_campaign(api, messages):
    campaign_a = messages["runs"][0].campaign_id
    campaign_b = messages["runs"][2].campaign_id

    assert _ids(api.get("/api/messages/", {"campaign": campaign_a})) == sorted(
        messages[k].pk for k in ("a1_alice", "a1_bob", "a2_alice")
    )
    assert _ids(api.get("/api/messages/", {"campaign": campaign_b})) == sorted(
        messages[k].pk for k in ("b_alice", "b_bob")
    )


def test_filter_by_run(api, messages):
    run_a1, run_a2, _ = messages["runs"]

    assert _ids(api.get("/api/messages/", {"run": run_a1.pk})) == sorted(
        messages[k].pk for k in ("a1_alice", "a1_bob")
    )
    assert _ids(api.get("/api/messages/", {"run": run_a2.pk})) == [messages["a2_alice"].pk]


def test_filter_by_client(api, messages):
    alice, bob = messages["clients"]

    assert _ids(api.get("/api/messages/", {"client": alice.pk})) == sorted(
        messages[k].pk for k in ("a1_alice", "a2_alice", "b_alice")
    )
    assert _ids(api.get("/api/messages/", {"client": bob.pk})) == sorted(
        messages[k].pk for k in ("a1_bob", "b_bob")
    )


@pytest.mark.parametrize(
    ("status", "keys"),
    [
        ("sent", ("a1_bob", "a2_alice")),
        ("pending", ("b_alice",)),
        ("failed", ("b_bob",)),
        ("cancelled", ("a1_alice",)),
        ("expired", ()),
    ],
)
def test_filter_by_status(api, messages, status, keys):
    response = api.get("/api/messages/", {"status": status})

    assert _ids(response) == sorted(messages[k].pk for k in keys)


def test_filters_combine(api, messages):
    alice, _ = messages["clients"]
    campaign_a = messages["runs"][0].campaign_id

    response = api.get(
        "/api/messages/", {"campaign": campaign_a, "client": alice.pk, "status": "sent"}
    )

    assert _ids(response) == [messages["a2_alice"].pk]


def test_filter_by_an_unknown_id_returns_nothing(api, messages):
    assert _ids(api.get("/api/messages/", {"campaign": 987654})) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"campaign": "abc"}, "campaign"),
        ({"run": "abc"}, "run"),
        ({"client": "abc"}, "client"),
    ],
)
def test_invalid_filter_value_is_400_naming_it(api, messages, query, field):
    response = api.get("/api/messages/", query)

    assert response.status_code == 400
    assert field in response.json()


def test_messages_cursor_pagination_walks_every_message_once(api, messages):
    pages = [api.get("/api/messages", {"page_size": 2}).json()]
    while pages[-1]["next"]:
        pages.append(api.get(_relative(pages[-1]["next"])).json())

    assert [len(page["results"]) for page in pages] == [2, 2, 1]
    assert all("count" not in page for page in pages)
    seen = [m["id"] for page in pages for m in page["results"]]
    assert seen == sorted(Message.objects.values_list("id", flat=True), reverse=True)


def test_pagination_keeps_the_filter(api, messages):
    alice, _ = messages["clients"]

    first = api.get("/api/messages/", {"client": alice.pk, "page_size": 2}).json()
    second = api.get(_relative(first["next"])).json()

    seen = [m["id"] for m in first["results"] + second["results"]]
    assert sorted(seen) == sorted(messages[k].pk for k in ("a1_alice", "a2_alice", "b_alice"))
    assert second["next"] is None


def test_list_messages_does_not_query_per_message(api, django_assert_max_num_queries):
    run = CampaignRunFactory()
    MessageFactory.create_batch(30, run=run)

    with django_assert_max_num_queries(3):
        response = api.get("/api/messages/")

    assert len(response.json()["results"]) == 30


@pytest.mark.parametrize(
    "query",
    [
        "run=99999999999999999999",
        "client=99999999999999999999",
        "campaign=99999999999999999999",
        "run=-1",
        "client=4294967296",  # beyond any message id's client part
    ],
)
def test_out_of_range_filters_match_nothing_and_never_fail(api, messages, query):
    response = api.get(f"/api/messages/?{query}")

    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert response.json()["results"] == []


@pytest.mark.parametrize("suffix", ["99999999999999999999999/", "9223372036854775808/"])
def test_a_message_id_beyond_bigint_is_a_404(api, messages, suffix):
    response = api.get(f"/api/messages/{suffix}")

    assert response.status_code == 404, response.content


def test_filters_find_each_message_by_its_run_and_client(api, messages):
    (alice, bob), (run_a1, _, run_b) = messages["clients"], messages["runs"]

    by_both = _ids(api.get(f"/api/messages/?run={run_b.pk}&client={alice.pk}"))
    by_run = _ids(api.get(f"/api/messages/?run={run_a1.pk}"))
    by_client = _ids(api.get(f"/api/messages/?client={bob.pk}"))

    assert by_both == [messages["b_alice"].pk]
    assert by_run == sorted([messages["a1_alice"].pk, messages["a1_bob"].pk])
    assert by_client == sorted([messages["a1_bob"].pk, messages["b_bob"].pk])


@pytest.mark.parametrize("name", ["run", "client", "campaign"])
@pytest.mark.parametrize("value", ["2.9", "1e0", "abc"])
def test_an_id_filter_that_is_not_a_whole_number_is_a_400_naming_it(api, messages, name, value):
    response = api.get(f"/api/messages/?{name}={value}")

    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.parametrize("name", ["campaign", "run", "client"])
def test_an_empty_id_filter_is_a_400_naming_it(api, name):
    response = api.get(f"/api/messages/?{name}=")

    assert response.status_code == 400
    assert name in response.json()
