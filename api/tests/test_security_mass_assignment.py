"""Mass assignment, generated from the OpenAPI schema: every write operation (POST, PUT, PATCH)
is called twice on twin objects, once with a valid body and once with the same body plus
every read-only field (the response's readOnly ones: ids, status, timestamps; and the run and
counter fields a caller might try), and the database must come out the same.

A write operation with no entry in WRITE_SAMPLES fails, telling its author what to add."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from api import selectors
from api.models import Campaign, CampaignRun, Client
from api.models import TestSend as CampaignTestSend  # (not collected as a test class)
from api.tests.factories import ClientFactory
from api.tests.openapi_routes import WRITE_METHODS, operations, response_read_only_fields

FORGED_ID = 999_999
FORGED_TIME = "2001-01-01T00:00:00Z"
# Fields a caller might try that no write takes, beside the schema's readOnly ones.
EXTRA_FORGED = {
    "deleted_at": FORGED_TIME,
    "runs": [{"id": FORGED_ID, "status": "finished", "planned_messages": 5}],
    "run_id": FORGED_ID,
    "run_number": 99,
    "campaign_id": FORGED_ID,
    "planned_messages": 99,
    "skipped_clients": 99,
    "total": 99,
    "sent": 99,
    "failed": 99,
    "pending": 99,
    "counts": {"sent": 99},
    "attempts": 99,
}


def forged_value(name: str):
    if name in EXTRA_FORGED:
        return EXTRA_FORGED[name]
    if name == "id" or name.endswith("_id"):
        return FORGED_ID
    if name.endswith("_at"):
        return FORGED_TIME
    if name == "status":
        return "failed"  # a status no write of these sets
    return 99


def _client_body(n: int) -> dict:
    return {
        "phone_number": f"7900000{n:04d}",
        "mobile_operator_code": "901",
        "tag": "twin",
        "timezone": "Europe/Moscow",
    }


def _campaign_body(n: int, **extra) -> dict:
    return {
        "text_message": "Hello",
        "start_datetime": "2030-01-01T00:00:00Z",
        "end_datetime": "2030-01-03T00:00:00Z",
        "tag": "vip",
        **extra,
    }


def _campaign_in(api, state: str) -> int:
    """A campaign of the `vip` audience in `state` (draft, running, paused), through the API."""
    body = _campaign_body(0, start_datetime="2020-01-01T00:00:00Z", auto_start=False)
    body["end_datetime"] = "2030-01-01T00:00:00Z"
    campaign = api.post("/api/campaigns/", body, format="json").json()["id"]
    if state in ("running", "paused"):
        assert api.post(f"/api/campaigns/{campaign}/start/").status_code == 202
    if state == "paused":
        assert api.post(f"/api/campaigns/{campaign}/pause/").status_code == 200
    return campaign


@dataclass
class Sample:
    """How to call one write operation: `target(api)` makes the URL's object (None: a create)
    and `body(n)` a valid body for twin number n."""

    body: Callable[[int], dict]
    target: Callable | None = None
    resource: str = "campaign"
    # The object of twin n when the body, not the URL, names it: `twin_target(api, n)`.
    twin_target: Callable | None = None


CLIENT_UPDATE = Sample(_client_body, lambda api: ClientFactory().pk, "client")
CAMPAIGN_UPDATE = Sample(_campaign_body, lambda api: _campaign_in(api, "draft"))
WRITE_SAMPLES = {
    ("post", "/api/clients/"): Sample(_client_body, None, "client"),
    ("put", "/api/clients/{id}/"): CLIENT_UPDATE,
    ("patch", "/api/clients/{id}/"): Sample(
        lambda n: {"tag": "patched"}, CLIENT_UPDATE.target, "client"
    ),
    ("post", "/api/campaigns/"): Sample(_campaign_body),
    ("put", "/api/campaigns/{id}/"): CAMPAIGN_UPDATE,
    ("patch", "/api/campaigns/{id}/"): Sample(
        lambda n: {"text_message": "Hi"}, CAMPAIGN_UPDATE.target
    ),
    ("post", "/api/campaigns/{id}/start/"): Sample(
        lambda n: {}, lambda api: _campaign_in(api, "draft")
    ),
    ("post", "/api/campaigns/{id}/pause/"): Sample(
        lambda n: {}, lambda api: _campaign_in(api, "running")
    ),
    ("post", "/api/campaigns/{id}/resume/"): Sample(
        lambda n: {}, lambda api: _campaign_in(api, "paused")
    ),
    ("post", "/api/campaigns/{id}/cancel/"): Sample(
        lambda n: {}, lambda api: _campaign_in(api, "running")
    ),
    ("post", "/api/campaigns/{id}/test/"): Sample(
        lambda n: {"phones": [Client.objects.filter(tag="vip").first().phone_number]},
        lambda api: _campaign_in(api, "draft"),
    ),
    ("post", "/api/clients/opt-out/"): Sample(
        lambda n: {"phones": [_client_body(n)["phone_number"]]},
        resource="client",
        twin_target=lambda api, n: ClientFactory(**_client_body(n)).pk,
    ),
}
# The same viewset under its old name: the same samples.
ALIASES = {"/api/newsletters/": "/api/campaigns/"}
# Write operations that create or change no resource row (nothing to mass-assign into).
NOT_RESOURCE_WRITES = {
    ("post", "/api/token/"): "signs in; answers tokens",
    ("post", "/api/token/refresh/"): "answers tokens",
    ("post", "/api/token/blacklist/"): "revokes a refresh token",
    # The import's inputs are closed lists of client columns: an unknown column is a 400 and an
    # unknown key of a bulk object a reported row (test_client_import.py and below).
    ("post", "/api/clients/import/"): "a multipart CSV upload; its columns are a closed list",
    ("post", "/api/clients/bulk/"): "a JSON array; each object's keys are a closed list",
}


@pytest.fixture(autouse=True)
def _audience(db):
    """Campaigns need an audience: one `vip` client."""
    ClientFactory(tag="vip")


def _sample_for(method: str, path: str) -> Sample:
    for alias, original in ALIASES.items():
        path = path.replace(alias, original)
    sample = WRITE_SAMPLES.get((method, path))
    if sample is None:
        pytest.fail(
            f"{method.upper()} {path} has no mass-assignment sample. Add to WRITE_SAMPLES in"
            " api/tests/test_security_mass_assignment.py a Sample with a valid body and the"
            " object it needs (or, if it writes no resource row, an entry with the reason in"
            " NOT_RESOURCE_WRITES).",
            pytrace=False,
        )
    return sample


def _state(resource: str, pk: int) -> dict:
    """What a write could change, ids and timestamps aside (compared between the twins)."""
    if resource == "client":
        row = Client.all_objects.values(
            "mobile_operator_code", "tag", "timezone", "deleted_at", "opted_out"
        )
        return row.get(pk=pk)
    campaign = Campaign.objects.values("status", "text_message", "tag").get(pk=pk)
    runs = CampaignRun.objects.filter(campaign_id=pk).order_by("number")
    campaign["runs"] = list(
        runs.values_list("number", "status", "force_resend", "planned_messages", "error")
    )
    stats = selectors.campaign_stats(pk) or {}
    campaign["counts"] = {k: v for k, v in stats.items() if "id" not in k and k != "latest_run"}
    return campaign


def _write(api, method: str, path: str, sample: Sample, n: int, forged: dict):
    if sample.twin_target:
        pk = sample.twin_target(api, n)
    else:
        pk = sample.target(api) if sample.target else None
    url = path.replace("{id}", str(pk))
    response = getattr(api, method)(url, {**sample.body(n), **forged}, format="json")
    assert response.status_code < 300, (method, url, response.content)
    return pk or response.json()["id"], response  # a test send answers a list: pk is set


WRITES = [op for op in operations(methods=WRITE_METHODS) if op not in NOT_RESOURCE_WRITES]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_read_only_fields_written_through_the_api_change_nothing(api, method, path):
    sample = _sample_for(method, path)
    names = response_read_only_fields(method, path) | set(EXTRA_FORGED) | {"id", "status"}
    forged = {name: forged_value(name) for name in names}
    model = Client.all_objects if sample.resource == "client" else Campaign.objects

    plain_pk, _ = _write(api, method, path, sample, 1, {})
    forged_pk, response = _write(api, method, path, sample, 2, forged)

    assert _state(sample.resource, forged_pk) == _state(sample.resource, plain_pk)
    answer = response.json()
    assert FORGED_ID not in (forged_pk, answer.get("id") if isinstance(answer, dict) else None)
    assert not model.filter(pk=FORGED_ID).exists()
    assert not CampaignRun.objects.filter(pk=FORGED_ID).exists()
    assert not CampaignTestSend.objects.filter(pk=FORGED_ID).exists()
    row = model.values("created_at", "updated_at").get(pk=forged_pk)
    assert 2001 not in (row["created_at"].year, row["updated_at"].year)


def test_every_write_operation_of_the_schema_is_proved():
    missing = []
    for method, path in WRITES:
        for alias, original in ALIASES.items():
            path = path.replace(alias, original)
        if (method, path) not in WRITE_SAMPLES:
            missing.append(f"{method.upper()} {path}")
    assert missing == [], "no mass-assignment sample (see WRITE_SAMPLES)"


def test_a_bulk_object_with_read_only_fields_is_refused_and_writes_nothing(api):
    forged = {**_client_body(7), "id": FORGED_ID, "deleted_at": FORGED_TIME, "opted_out_at": 1}
    response = api.post("/api/clients/bulk/", [forged], format="json")

    assert response.status_code == 200, response.content
    assert response.json()["report"][0]["line"] == 1
    assert not Client.all_objects.filter(pk=FORGED_ID).exists()
    assert not Client.all_objects.filter(phone_number=forged["phone_number"]).exists()
