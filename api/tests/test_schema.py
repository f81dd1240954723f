"""The OpenAPI schema: valid without warnings, and it documents the campaign actions."""

import json

import pytest
from django.core.management import call_command

ACTION_PATHS = [
    "/api/campaigns/{id}/start/",
    "/api/campaigns/{id}/pause/",
    "/api/campaigns/{id}/resume/",
    "/api/campaigns/{id}/cancel/",
    "/api/campaigns/{id}/stats/",
    "/api/campaigns/stats/",
]


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    target = tmp_path_factory.mktemp("schema") / "schema.json"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(target),
    )
    return json.loads(target.read_text())


def test_spectacular_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert target.read_text().startswith("openapi: 3")


@pytest.mark.parametrize("path", ACTION_PATHS)
def test_schema_documents_the_campaign_actions(schema, path):
    method = "get" if path.endswith("stats/") else "post"

    assert method in schema["paths"][path]


def test_schema_documents_start_responses_and_force_resend(schema):
    start = schema["paths"]["/api/campaigns/{id}/start/"]["post"]

    assert {"202", "400", "409"} <= set(start["responses"])
    assert "force_resend" in {p["name"] for p in start["parameters"] if p["in"] == "query"}


def test_schema_documents_every_resource_and_the_token_endpoints(schema):
    assert {
        "/api/clients/",
        "/api/clients/{id}/",
        "/api/campaigns/",
        "/api/campaigns/{id}/",
        "/api/messages/",
        "/api/messages/{id}/",
        "/api/token/",
        "/api/token/refresh/",
    } <= set(schema["paths"])
    assert set(schema["paths"]["/api/messages/{id}/"]) == {"get"}


def test_schema_declares_bearer_jwt(schema):
    schemes = schema["components"]["securitySchemes"]

    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_schema_endpoint_serves_the_same_paths(api):
    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert set(ACTION_PATHS) <= set(response.json()["paths"])


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/clients/opt-out/", "post", {"200", "400"}),
        ("/api/campaigns/{id}/test/", "post", {"200", "400"}),
        ("/api/campaigns/{id}/preview/", "get", {"200", "400"}),
    ],
)
def test_schema_documents_the_operator_actions(schema, path, method, codes):
    assert codes <= set(schema["paths"][path][method]["responses"])


def test_schema_documents_only_failed_and_the_preview_zone(schema):
    start = schema["paths"]["/api/campaigns/{id}/start/"]["post"]
    body = start["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]
    preview = schema["paths"]["/api/campaigns/{id}/preview/"]["get"]

    assert "only" in schema["components"]["schemas"][body]["properties"]
    assert "tz" in {p["name"] for p in preview["parameters"]}
    assert "opted_out" in schema["components"]["schemas"]["Client"]["properties"]
