"""Hostile request bodies: every one a 4xx JSON answer, never a 500 or an HTML page."""

import pytest
from django.test import Client as DjangoClient

from api.models import Client

DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture
def raw(db):
    # A Django test client: the body goes out exactly as given, like from curl.
    return DjangoClient(raise_request_exception=False)


@pytest.mark.parametrize("path", ["/api/token/", "/api/token/refresh/", "/api/token/blacklist/"])
def test_deeply_nested_json_on_the_open_token_endpoints_is_a_400(raw, path):
    response = raw.post(path, DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "nested" in response.json()["error"]


def test_deeply_nested_json_on_an_authenticated_endpoint_is_a_400(api):
    response = api.generic("POST", "/api/clients/", DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Malformed JSON body."
    assert not Client.objects.exists()


@pytest.mark.parametrize("path", ["/api/token/", "/api/clients/"])
def test_a_body_over_the_limit_is_a_413_json(raw, api, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"username": "' + "x" * 2000 + '"}'
    client = api if path == "/api/clients/" else raw

    response = client.generic("POST", path, body, content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "1000 bytes" in response.json()["detail"]


def test_a_body_at_the_limit_is_read(api, settings):
    body = (
        '{"phone_number": "79000000001", "mobile_operator_code": "900",'
        ' "tag": "t", "timezone": "UTC"}'
    )
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)

    response = api.generic("POST", "/api/clients/", body, content_type="application/json")

    assert response.status_code == 201
