"""Every API route needs a JWT; the token endpoints hand them out and take them back; the
integrator docs are public unless API_DOCS_PUBLIC=false."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api.models import Campaign, Client, Message
from api.tests.factories import ClientFactory, MessageFactory

PASSWORD = "s3cret-pass"  # the `user` fixture's password

# (method, path); {client}, {campaign} and {message} are ids of real rows, so a 401 is never a
# 404 in disguise. Several paths appear with and without the trailing slash.
PROTECTED_ROUTES = [
    ("get", "/api/"),
    ("get", "/api/clients/"),
    ("get", "/api/clients"),
    ("post", "/api/clients/"),
    ("post", "/api/clients"),
    ("get", "/api/clients/{client}/"),
    ("get", "/api/clients/{client}"),
    ("put", "/api/clients/{client}/"),
    ("patch", "/api/clients/{client}"),
    ("delete", "/api/clients/{client}/"),
    ("get", "/api/campaigns/"),
    ("get", "/api/campaigns"),
    ("post", "/api/campaigns/"),
    ("get", "/api/campaigns/{campaign}/"),
    ("get", "/api/campaigns/{campaign}"),
    ("put", "/api/campaigns/{campaign}/"),
    ("patch", "/api/campaigns/{campaign}"),
    ("delete", "/api/campaigns/{campaign}/"),
    ("post", "/api/campaigns/{campaign}/start/"),
    ("post", "/api/campaigns/{campaign}/start"),
    ("post", "/api/campaigns/{campaign}/pause/"),
    ("post", "/api/campaigns/{campaign}/pause"),
    ("post", "/api/campaigns/{campaign}/resume/"),
    ("post", "/api/campaigns/{campaign}/resume"),
    ("post", "/api/campaigns/{campaign}/cancel/"),
    ("post", "/api/campaigns/{campaign}/cancel"),
    ("get", "/api/campaigns/{campaign}/stats/"),
    ("get", "/api/campaigns/{campaign}/stats"),
    ("get", "/api/campaigns/stats/"),
    ("get", "/api/campaigns/stats"),
    ("get", "/api/newsletters/"),
    ("get", "/api/newsletters"),
    ("post", "/api/newsletters"),
    ("get", "/api/newsletters/{campaign}"),
    ("post", "/api/newsletters/{campaign}/start"),
    ("get", "/api/newsletters/{campaign}/stats"),
    ("get", "/api/newsletters/stats"),
    ("get", "/api/messages/"),
    ("get", "/api/messages"),
    ("get", "/api/messages/{message}/"),
    ("get", "/api/messages/{message}"),
]


@pytest.fixture
def rows(db):
    message = MessageFactory()
    return {"client": message.client_id, "campaign": message.run.campaign_id, "message": message.pk}


def _call(client, method, path, **kwargs):
    return getattr(client, method)(path, format="json", **kwargs)


@pytest.mark.parametrize(("method", "path"), PROTECTED_ROUTES)
def test_every_api_route_is_401_without_a_token(anon, rows, method, path):
    response = _call(anon, method, path.format(**rows), data={})

    assert response.status_code == 401, (path, response.content)
    assert b"Authentication credentials were not provided" in response.content
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED_ROUTES)
def test_every_api_route_is_401_with_a_garbage_token(anon, rows, method, path):
    anon.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    response = _call(anon, method, path.format(**rows), data={})

    assert response.status_code == 401, (path, response.content)


def test_anonymous_writes_change_nothing(anon, rows):
    before = (Client.objects.count(), Campaign.objects.count(), Message.objects.count())
    status = Campaign.objects.get(pk=rows["campaign"]).status

    _call(anon, "delete", f"/api/clients/{rows['client']}/")
    _call(anon, "post", f"/api/campaigns/{rows['campaign']}/cancel/")
    _call(anon, "post", "/api/clients/", data={"phone_number": "79000000001"})

    assert (Client.objects.count(), Campaign.objects.count(), Message.objects.count()) == before
    assert Campaign.objects.get(pk=rows["campaign"]).status == status


@pytest.mark.parametrize("token_path", ["/api/token/", "/api/token"])
def test_token_pair_for_real_credentials_and_access_token_works_as_bearer(anon, user, token_path):
    ClientFactory(phone_number="79000000001")

    response = _call(anon, "post", token_path, data={"username": "operator", "password": PASSWORD})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"access", "refresh"}
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    listing = anon.get("/api/clients/")
    assert listing.status_code == 200
    assert [c["phone_number"] for c in listing.json()["results"]] == ["79000000001"]


@pytest.mark.parametrize("refresh_path", ["/api/token/refresh/", "/api/token/refresh"])
def test_refresh_token_gives_a_working_access_token(anon, user, refresh_path):
    pair = _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    ).json()

    response = _call(anon, "post", refresh_path, data={"refresh": pair["refresh"]})

    assert response.status_code == 200, response.content
    access = response.json()["access"]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert anon.get("/api/campaigns/").status_code == 200


def test_refresh_with_a_garbage_token_is_401(anon, db):
    response = _call(anon, "post", "/api/token/refresh/", data={"refresh": "garbage"})

    assert response.status_code == 401
    assert response.json()["detail"]


def test_refresh_without_a_token_is_400_naming_refresh(anon, db):
    response = _call(anon, "post", "/api/token/refresh/", data={})

    assert response.status_code == 400
    assert "refresh" in response.json()


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "operator", "password": "wrong-password"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_token_with_bad_credentials_is_401(anon, user, credentials):
    response = _call(anon, "post", "/api/token/", data=credentials)

    assert response.status_code == 401
    assert "access" not in response.json()


def test_token_for_an_inactive_user_is_401(anon, user):
    user.is_active = False
    user.save()

    response = _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    )

    assert response.status_code == 401


def test_token_without_password_is_400_naming_password(anon, user):
    response = _call(anon, "post", "/api/token/", data={"username": "operator"})

    assert response.status_code == 400
    assert "password" in response.json()


def test_refresh_token_is_not_accepted_as_an_access_token(anon, user):
    pair = _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    ).json()
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['refresh']}")

    assert anon.get("/api/clients/").status_code == 401


def test_access_token_of_a_deactivated_user_stops_working(anon, user):
    access = _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    ).json()["access"]
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    assert anon.get("/api/clients/").status_code == 401


@pytest.mark.parametrize("header", ["Token abc", "Basic b3BlcmF0b3I6czNjcmV0LXBhc3M=", "Bearer"])
def test_other_authorization_schemes_are_401(anon, user, header):
    anon.credentials(HTTP_AUTHORIZATION=header)

    assert anon.get("/api/clients/").status_code == 401


def test_api_root_lists_the_resources_with_a_token(api):
    response = api.get("/api/")

    assert response.status_code == 200
    assert set(response.json()) == {"clients", "campaigns", "messages"}
    assert response.json()["clients"].endswith("/api/clients")


def test_schema_is_served_with_a_bearer_token(anon, user):
    access = _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    ).json()["access"]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    response = anon.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "/api/campaigns/{id}/start/" in response.json()["paths"]


@pytest.mark.parametrize("path", ["/docs/", "/docs", "/api/schema/", "/api/schema"])
def test_docs_and_schema_are_public_by_default(db, path):
    response = APIClient().get(path, HTTP_ACCEPT="*/*")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower() or b"openapi" in response.content.lower()


def test_the_public_schema_offers_bearer_authorization_for_every_operation(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/token"):
                continue
            assert {"jwtAuth": []} in operation["security"], (method, path)


_LOCKED_DOCS = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient
call_command("migrate", verbosity=0)
anon = APIClient()
docs, schema = anon.get("/docs/"), anon.get("/api/schema/")
user = get_user_model().objects.create_user("reader", password="pw-12345678")
signed_in = APIClient()
signed_in.force_login(user)
print(docs.status_code, docs.get("Location"), schema.status_code,
      signed_in.get("/docs/").status_code, signed_in.get("/api/schema/").status_code)
"""


def test_api_docs_public_false_asks_for_a_sign_in(tmp_path):
    import subprocess
    import sys

    from api.tests.servers import ROOT, scratch_env

    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _LOCKED_DOCS],
        cwd=ROOT,
        env=scratch_env(tmp_path, API_DOCS_PUBLIC="false"),
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["302", "/admin/login/?next=/docs/", "401", "200", "200"]


def test_site_root_redirects_to_docs(db):
    response = APIClient().get("/")

    assert response.status_code == 302
    assert response["Location"] == "/docs/"


def test_signed_in_user_sees_swagger_ui_and_its_schema(user):
    browser = APIClient()
    browser.force_login(user)

    docs = browser.get("/docs/")
    schema = browser.get("/api/schema/", {"format": "json"})

    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Task Delay Service API"


def _bearer(anon):
    access = _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    ).json()["access"]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_a_remembered_user_is_shut_out_once_the_cache_seconds_pass(
    anon, user, settings, monkeypatch, change
):
    # The worker remembers a token's user for AUTH_USER_CACHE_SECONDS (README, auth).
    settings.AUTH_USER_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr("api.authentication.time.monotonic", lambda: clock[0])
    _bearer(anon)
    assert anon.get("/api/clients/").status_code == 200
    if change == "delete":
        user.delete()
    else:
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    clock[0] += 4.9
    assert anon.get("/api/clients/").status_code == 200
    clock[0] += 0.2
    assert anon.get("/api/clients/").status_code == 401
    clock[0] += 100  # an entry is never made for a refused user
    assert anon.get("/api/clients/").status_code == 401


def test_with_no_cache_a_deactivated_user_is_shut_out_at_once(anon, user, settings):
    settings.AUTH_USER_CACHE_SECONDS = 0
    _bearer(anon)
    assert anon.get("/api/clients/").status_code == 200
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    assert anon.get("/api/clients/").status_code == 401


def test_the_remembered_user_is_read_once_per_period(anon, user, settings):
    settings.AUTH_USER_CACHE_SECONDS = 60
    _bearer(anon)
    with CaptureQueriesContext(connection) as first:
        anon.get("/api/campaigns/stats/")
    with CaptureQueriesContext(connection) as second:
        anon.get("/api/campaigns/stats/")

    user_reads = [q for q in first.captured_queries if "auth_user" in q["sql"]]
    assert len(user_reads) == 1
    assert not [q for q in second.captured_queries if "auth_user" in q["sql"]]


def _pair(anon):
    return _call(
        anon, "post", "/api/token/", data={"username": "operator", "password": PASSWORD}
    ).json()


def test_a_refresh_rotates_and_the_used_refresh_token_is_dead(anon, user):
    pair = _pair(anon)

    first = _call(anon, "post", "/api/token/refresh/", data={"refresh": pair["refresh"]})
    assert first.status_code == 200
    assert first.json()["refresh"] != pair["refresh"]  # a new one each time
    again = _call(anon, "post", "/api/token/refresh/", data={"refresh": pair["refresh"]})
    assert again.status_code == 401  # the used one is blacklisted
    fresh = _call(anon, "post", "/api/token/refresh/", data={"refresh": first.json()["refresh"]})
    assert fresh.status_code == 200


def test_blacklist_logs_out(anon, user):
    pair = _pair(anon)

    response = _call(anon, "post", "/api/token/blacklist/", data={"refresh": pair["refresh"]})

    assert response.status_code == 200
    refused = _call(anon, "post", "/api/token/refresh/", data={"refresh": pair["refresh"]})
    assert refused.status_code == 401
    assert _call(anon, "post", "/api/token/blacklist/", data={}).status_code == 400


def test_the_daily_flush_forgets_only_expired_refresh_tokens(anon, user):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    from api import tasks

    _pair(anon)
    _pair(anon)
    OutstandingToken.objects.filter(pk=OutstandingToken.objects.first().pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert tasks.flush_expired_tokens() == {"deleted": 1}
    assert OutstandingToken.objects.count() == 1
