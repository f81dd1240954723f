"""Clients over HTTP: CRUD, validation naming the field, soft delete, filters, pagination."""

import base64
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from api.models import Client, Message, MessageStatus
from api.tests.factories import ClientFactory, MessageFactory


def client_body(**overrides):
    body = {
        "phone_number": "79001234567",
        "mobile_operator_code": "900",
        "tag": "vip",
        "timezone": "Europe/Moscow",
    }
    body.update(overrides)
    return body


def _relative(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- create ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/clients/", "/api/clients"])
def test_create_client_is_201_and_stores_the_row(api, path):
    response = api.post(path, client_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["phone_number"] == "79001234567"
    assert body["mobile_operator_code"] == "900"
    assert body["tag"] == "vip"
    assert body["timezone"] == "Europe/Moscow"
    assert {"id", "created_at", "updated_at"} <= set(body)
    stored = Client.objects.get(pk=body["id"])
    assert (stored.phone_number, stored.timezone, stored.deleted_at) == (
        "79001234567",
        "Europe/Moscow",
        None,
    )


def test_create_client_without_timezone_or_tag_defaults_to_utc_and_no_tag(api):
    body = client_body()
    del body["timezone"], body["tag"]

    response = api.post("/api/clients/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["timezone"] == "UTC"
    assert response.json()["tag"] == ""


def test_create_client_ignores_read_only_fields(api):
    response = api.post(
        "/api/clients/",
        client_body(id=999999, created_at="2000-01-01T00:00:00Z"),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["id"] != 999999
    assert not Client.all_objects.filter(pk=999999).exists()
    assert Client.objects.get().created_at > timezone.now() - timedelta(minutes=5)


@pytest.mark.parametrize(
    "phone",
    [
        "7900123456",  # 10 digits
        "790012345678",  # 12 digits
        "89001234567",  # does not start with 7
        "7900123456a",  # a letter
        "+7900123456",  # a plus sign
        "7900 123456",  # a space
        "",
    ],
)
def test_create_client_with_bad_phone_is_400_naming_phone_number(api, phone):
    response = api.post("/api/clients/", client_body(phone_number=phone), format="json")

    assert response.status_code == 400
    assert "phone_number" in response.json()
    assert not Client.all_objects.exists()


@pytest.mark.parametrize("code", ["90", "9000", "9a0", "", "abc"])
def test_create_client_with_bad_operator_code_is_400_naming_it(api, code):
    response = api.post("/api/clients/", client_body(mobile_operator_code=code), format="json")

    assert response.status_code == 400
    assert "mobile_operator_code" in response.json()
    assert not Client.all_objects.exists()


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "+03:00", "moscow", ""])
def test_create_client_with_unknown_timezone_is_400_naming_timezone(api, zone):
    response = api.post("/api/clients/", client_body(timezone=zone), format="json")

    assert response.status_code == 400
    assert "timezone" in response.json()
    assert not Client.all_objects.exists()


def test_create_client_with_a_taken_phone_is_400_naming_phone_number(api):
    ClientFactory(phone_number="79001234567")

    response = api.post("/api/clients/", client_body(), format="json")

    assert response.status_code == 400
    assert "phone_number" in response.json()
    assert Client.objects.count() == 1


def test_create_client_without_required_fields_is_400_naming_each(api):
    response = api.post("/api/clients/", {}, format="json")

    assert response.status_code == 400
    assert {"phone_number", "mobile_operator_code"} <= set(response.json())


def test_create_client_with_malformed_json_is_400_json(api):
    response = api.post("/api/clients/", data='{"phone_number": ', content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert not Client.all_objects.exists()


# --- read --------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["/", ""])
def test_retrieve_client(api, suffix):
    client = ClientFactory(tag="gold", timezone="Asia/Tokyo")

    response = api.get(f"/api/clients/{client.pk}{suffix}")

    assert response.status_code == 200
    assert response.json()["id"] == client.pk
    assert response.json()["tag"] == "gold"
    assert response.json()["timezone"] == "Asia/Tokyo"


def test_retrieve_unknown_client_is_404_json(api):
    response = api.get("/api/clients/987654/")

    assert response.status_code == 404
    assert response.json()["detail"]


def test_list_clients_returns_them_newest_first_without_count(api):
    clients = ClientFactory.create_batch(3)

    response = api.get("/api/clients/")

    assert response.status_code == 200
    body = response.json()
    assert "count" not in body
    assert [c["id"] for c in body["results"]] == [c.pk for c in reversed(clients)]
    assert body["next"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"tag": "gold"}, {"g1", "g2"}),
        ({"tag": "vip"}, {"v1"}),
        ({"mobile_operator_code": "901"}, {"g2", "v1"}),
        ({"tag": "gold", "mobile_operator_code": "901"}, {"g2"}),
        ({"timezone": "Asia/Tokyo"}, {"v1"}),
        ({"phone_number": "79000000002"}, {"g2"}),
        ({"tag": "nobody"}, set()),
    ],
)
def test_list_clients_filters(api, query, expected):
    names = {
        ClientFactory(phone_number="79000000001", tag="gold", mobile_operator_code="900").pk: "g1",
        ClientFactory(phone_number="79000000002", tag="gold", mobile_operator_code="901").pk: "g2",
        ClientFactory(
            phone_number="79000000003", tag="vip", mobile_operator_code="901", timezone="Asia/Tokyo"
        ).pk: "v1",
    }

    response = api.get("/api/clients/", query)

    assert response.status_code == 200
    assert {names[c["id"]] for c in response.json()["results"]} == expected


def test_list_clients_cursor_pagination_walks_every_client_once(api):
    ids = [c.pk for c in ClientFactory.create_batch(5)]

    first = api.get("/api/clients/", {"page_size": 2}).json()
    second = api.get(_relative(first["next"])).json()
    third = api.get(_relative(second["next"])).json()

    assert "count" not in first
    assert [len(page["results"]) for page in (first, second, third)] == [2, 2, 1]
    seen = [c["id"] for page in (first, second, third) for c in page["results"]]
    assert seen == sorted(ids, reverse=True)
    assert third["next"] is None
    assert "cursor=" in first["next"]
    assert first["previous"] is None
    assert api.get(_relative(second["previous"])).json()["results"] == first["results"]


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",  # not base64 at all
        "!!!!",
        _cursor("p=abc"),  # well formed, position not a number (was a 500)
        _cursor("p=1.5"),
        _cursor("o=-1&p=3"),
        _cursor("r=2&p=3"),
        _cursor("x=1"),  # decodes, but to nothing this API writes (was an empty 200 page)
        _cursor("p=1&p=2"),
        base64.b64encode(b"\xff\xfe").decode(),
        "",
    ],
)
@pytest.mark.parametrize("path", ["/api/clients/", "/api/campaigns/", "/api/messages/"])
def test_a_bad_cursor_is_a_400_naming_cursor(api, path, cursor):
    ClientFactory()

    response = api.get(path, {"cursor": cursor})

    assert response.status_code == 400, response.content
    assert "cursor" in response.json()


def test_a_cursor_the_api_wrote_still_works(api):
    ClientFactory.create_batch(3)
    first = api.get("/api/clients/", {"page_size": 2}).json()

    second = api.get(_relative(first["next"]))

    assert second.status_code == 200
    assert len(second.json()["results"]) == 1


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", "١٠", ""])
@pytest.mark.parametrize("path", ["/api/clients/", "/api/campaigns/", "/api/messages/"])
def test_a_bad_page_size_is_a_400_naming_it(api, path, page_size):
    response = api.get(path, {"page_size": page_size})

    assert response.status_code == 400
    assert "page_size" in response.json()


# --- update ------------------------------------------------------------------------------
def test_put_client_replaces_every_field(api):
    client = ClientFactory(phone_number="79000000001", tag="vip")

    response = api.put(
        f"/api/clients/{client.pk}/",
        client_body(phone_number="79000000009", tag="gold", mobile_operator_code="901"),
        format="json",
    )

    assert response.status_code == 200, response.content
    client.refresh_from_db()
    assert (client.phone_number, client.tag, client.mobile_operator_code, client.timezone) == (
        "79000000009",
        "gold",
        "901",
        "Europe/Moscow",
    )


def test_put_client_without_required_fields_is_400(api):
    client = ClientFactory()

    response = api.put(f"/api/clients/{client.pk}/", {"tag": "gold"}, format="json")

    assert response.status_code == 400
    assert "phone_number" in response.json()
    client.refresh_from_db()
    assert client.tag == "vip"


def test_patch_client_changes_only_the_given_field(api):
    client = ClientFactory(phone_number="79000000001", tag="vip", timezone="UTC")

    response = api.patch(f"/api/clients/{client.pk}", {"tag": "gold"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["tag"] == "gold"
    client.refresh_from_db()
    assert (client.tag, client.phone_number, client.timezone) == ("gold", "79000000001", "UTC")


def test_patch_client_keeping_its_own_phone_is_allowed(api):
    client = ClientFactory(phone_number="79000000001")

    response = api.patch(
        f"/api/clients/{client.pk}/", {"phone_number": "79000000001", "tag": "x"}, format="json"
    )

    assert response.status_code == 200, response.content


def test_patch_client_to_another_clients_phone_is_400_naming_phone_number(api):
    ClientFactory(phone_number="79000000001")
    client = ClientFactory(phone_number="79000000002")

    response = api.patch(
        f"/api/clients/{client.pk}/", {"phone_number": "79000000001"}, format="json"
    )

    assert response.status_code == 400
    assert "phone_number" in response.json()
    client.refresh_from_db()
    assert client.phone_number == "79000000002"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone_number", "123"),
        ("mobile_operator_code", "1234"),
        ("timezone", "Nowhere/City"),
    ],
)
def test_patch_client_with_an_invalid_value_is_400_naming_the_field(api, field, value):
    client = ClientFactory()
    before = getattr(client, field)

    response = api.patch(f"/api/clients/{client.pk}/", {field: value}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    client.refresh_from_db()
    assert getattr(client, field) == before


def test_update_unknown_client_is_404(api):
    assert api.patch("/api/clients/987654/", {"tag": "x"}, format="json").status_code == 404
    assert api.put("/api/clients/987654/", client_body(), format="json").status_code == 404


# --- delete (soft) -----------------------------------------------------------------------
def test_delete_client_is_a_soft_delete(api):
    client = ClientFactory()

    response = api.delete(f"/api/clients/{client.pk}/")

    assert response.status_code == 204
    assert api.get(f"/api/clients/{client.pk}/").status_code == 404
    assert api.get("/api/clients/").json()["results"] == []
    stored = Client.all_objects.get(pk=client.pk)
    assert stored.deleted_at is not None


def test_delete_client_keeps_its_history_and_cancels_its_unsent_messages(api):
    client = ClientFactory()
    sent = MessageFactory(client=client, status=MessageStatus.SENT)
    failed = MessageFactory(client=client, status=MessageStatus.FAILED)
    pending = MessageFactory(client=client, status=MessageStatus.PENDING)
    paused = MessageFactory(client=client, status=MessageStatus.PAUSED)
    other = MessageFactory(status=MessageStatus.PENDING)

    assert api.delete(f"/api/clients/{client.pk}").status_code == 204

    statuses = dict(Message.objects.values_list("id", "status"))
    assert statuses == {
        sent.pk: MessageStatus.SENT,
        failed.pk: MessageStatus.FAILED,
        pending.pk: MessageStatus.CANCELLED,
        paused.pk: MessageStatus.CANCELLED,
        other.pk: MessageStatus.PENDING,
    }
    history = api.get("/api/messages/", {"client": client.pk}).json()["results"]
    assert {m["id"] for m in history} == {sent.pk, failed.pk, pending.pk, paused.pk}


def test_deleted_clients_phone_can_be_reused_by_a_new_client(api):
    client = ClientFactory(phone_number="79001234567")
    assert api.delete(f"/api/clients/{client.pk}/").status_code == 204

    response = api.post("/api/clients/", client_body(), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["id"] != client.pk
    assert Client.all_objects.filter(phone_number="79001234567").count() == 2
    assert Client.objects.get(phone_number="79001234567").pk == response.json()["id"]


def test_delete_client_twice_is_404(api):
    client = ClientFactory()
    api.delete(f"/api/clients/{client.pk}/")

    response = api.delete(f"/api/clients/{client.pk}/")

    assert response.status_code == 404


def test_deleted_client_cannot_be_updated(api):
    client = ClientFactory()
    api.delete(f"/api/clients/{client.pk}/")

    response = api.patch(f"/api/clients/{client.pk}/", {"tag": "back"}, format="json")

    assert response.status_code == 404
    assert Client.all_objects.get(pk=client.pk).tag == "vip"


def test_deleted_client_is_not_found_by_list_filters(api):
    client = ClientFactory(phone_number="79000000001", tag="gold")
    api.delete(f"/api/clients/{client.pk}/")

    for query in ({"tag": "gold"}, {"phone_number": "79000000001"}):
        assert api.get("/api/clients/", query).json()["results"] == []


def test_list_clients_page_size_is_capped_at_1000(api):
    Client.objects.bulk_create(ClientFactory.build_batch(1001))

    response = api.get("/api/clients/", {"page_size": 5000})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1000
    assert response.json()["next"] is not None


def test_create_client_accepts_numbers_given_as_json_integers(api):
    response = api.post(
        "/api/clients/",
        {"phone_number": 79001234567, "mobile_operator_code": 900},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["phone_number"] == "79001234567"
    assert response.json()["mobile_operator_code"] == "900"


# --- one client, one number ----------------------------------------------------------------
LOOKALIKES = [
    "٧٩٠٠٠٠٠٠٠٠١",  # Arabic-Indic
    "७९००००००००१",  # Devanagari
    "７９０００００００００１",  # fullwidth
    "79000000001\n",  # trimmed to the taken number: refused as a duplicate
]


@pytest.mark.parametrize("phone", LOOKALIKES)
def test_a_phone_in_other_digits_is_refused_everywhere(api, phone):
    ClientFactory(phone_number="79000000001")
    body = {"phone_number": phone, "mobile_operator_code": "900", "timezone": "UTC"}

    created = api.post("/api/clients/", body, format="json")
    other = ClientFactory(phone_number="79000000002")
    patched = api.patch(f"/api/clients/{other.pk}/", {"phone_number": phone}, format="json")

    assert created.status_code == 400 and "phone_number" in created.json()
    assert patched.status_code == 400 and "phone_number" in patched.json()
    assert Client.objects.count() == 2


@pytest.mark.parametrize("code", ["٩٠٠", "९००", "９００"])
def test_an_operator_code_in_other_digits_is_refused(api, code):
    body = {"phone_number": "79000000001", "mobile_operator_code": code, "timezone": "UTC"}

    response = api.post("/api/clients/", body, format="json")

    assert response.status_code == 400
    assert "mobile_operator_code" in response.json()


@pytest.mark.parametrize(
    "client_filter",
    [
        ["٧٩٠٠٠٠٠٠٠٠١"],
        {"phone_numbers": ["７９０００００００００１"]},
        {"operator_codes": ["٩٠٠"]},
    ],
)
def test_a_campaign_audience_in_other_digits_is_refused(api, client_filter):
    body = {
        "text_message": "hi",
        "start_datetime": (timezone.now() + timedelta(hours=1)).isoformat(),
        "end_datetime": (timezone.now() + timedelta(days=1)).isoformat(),
        "client_filter": client_filter,
        "auto_start": False,
    }

    response = api.post("/api/campaigns/", body, format="json")

    assert response.status_code == 400
    assert "client_filter" in response.json()


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "posix/Europe/Moscow"])
def test_a_time_zone_must_be_a_real_iana_name(api, zone):
    body = {"phone_number": "79000000001", "mobile_operator_code": "900", "timezone": zone}

    response = api.post("/api/clients/", body, format="json")

    assert response.status_code == 400
    assert "timezone" in response.json()


def test_the_admin_form_applies_the_same_rules():
    from django.core.exceptions import ValidationError

    client = Client(phone_number="٧٩٠٠٠٠٠٠٠٠١", mobile_operator_code="٩٠٠", timezone="localtime")
    with pytest.raises(ValidationError) as refused:
        client.full_clean()

    assert set(refused.value.message_dict) == {"phone_number", "mobile_operator_code", "timezone"}


@pytest.mark.parametrize("query", ["page_size=2&page_size=3", "tag=a&tag=b", "cursor=x&cursor=y"])
@pytest.mark.parametrize("path", ["/api/clients/", "/api/campaigns/", "/api/messages/"])
def test_a_query_parameter_given_twice_is_a_400_naming_it(api, path, query):
    response = api.get(f"{path}?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


@pytest.mark.parametrize("field", ["tag", "timezone"])
def test_a_number_where_the_schema_says_string_is_refused(api, field):
    body = {"phone_number": "79000000001", "mobile_operator_code": "900", "tag": "t"}
    body[field] = 0

    response = api.post("/api/clients/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
