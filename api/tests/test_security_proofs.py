"""The auth matrix, generated from the OpenAPI schema (api/tests/openapi_routes.py): every
operation that is not public answers 401 to every bad credential, with and without the
trailing slash, and a deleted or deactivated user's tokens stop working once the worker's
remembered user expires (AUTH_USER_CACHE_SECONDS). A route the URL conf serves under /api/
that anyone may call must be listed in PUBLIC_API_VIEWS, with the reason."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from api.tests.factories import MessageFactory
from api.tests.openapi_routes import concrete_path, operations

# Views under /api/ that answer without a token, and why (the URL-conf check below).
PUBLIC_API_VIEWS = {
    "TokenObtainPairView": "signs in: exchanges a username and password for tokens",
    "TokenRefreshView": "exchanges a refresh token (its own credential) for tokens",
    "TokenBlacklistView": "logs out: takes the refresh token to revoke",
    "SpectacularAPIView": "the integrator schema, public unless API_DOCS_PUBLIC=false",
}

PROTECTED = operations(public=False)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _segments(token: str) -> tuple[str, str, str]:
    header, payload, signature = token.split(".")
    return header, payload, signature


def _expired(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=token.current_time - timedelta(hours=2), lifetime=timedelta(hours=1))
    return str(token)


def _tampered_signature(user) -> str:
    header, payload, _ = _segments(str(AccessToken.for_user(user)))
    forged = jwt.encode({"x": 1}, "not-the-signing-key-but-32-bytes-long", algorithm="HS256")
    return f"{header}.{payload}.{_segments(forged)[2]}"


def _tampered_payload(user) -> str:
    header, _, signature = _segments(str(AccessToken.for_user(user)))
    claims = AccessToken.for_user(user).payload | {"user_id": str(user.pk + 1)}
    return f"{header}.{_b64(claims)}.{signature}"


def _alg_none(user) -> str:
    claims = dict(AccessToken.for_user(user).payload)
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _signed_with_another_key(user) -> str:
    claims = dict(AccessToken.for_user(user).payload)
    return jwt.encode(claims, "a-guessed-secret-key-of-32-bytes!!", algorithm="HS256")


BAD_CREDENTIALS = {
    "no token": None,
    "expired": _expired,
    "tampered signature": _tampered_signature,
    "tampered payload": _tampered_payload,
    "alg none": _alg_none,
    "signed with another key": _signed_with_another_key,
    "refresh token as access": lambda user: str(RefreshToken.for_user(user)),
}


@pytest.fixture
def ids(db):
    message = MessageFactory()
    campaign = message.run.campaign_id
    return {
        "clients": message.client_id,
        "campaigns": campaign,
        "newsletters": campaign,
        "messages": message.pk,
    }


def _variants(path: str) -> list[str]:
    """The schema's spelling and the other one (every route under /api/ takes both)."""
    if path == "/api/":
        return [path]  # "/api" is outside the API's URL conf (a plain 404 from Django)
    return [path, path.rstrip("/")] if path.endswith("/") else [path, path + "/"]


def _refusals(client: APIClient, ids: dict) -> list[str]:
    """Every protected operation that did not answer 401 with a Bearer challenge."""
    failures = []
    for method, schema_path in PROTECTED:
        for path in _variants(concrete_path(schema_path, ids)):
            response = getattr(client, method)(path, {}, format="json")
            challenge = response.get("WWW-Authenticate", "")
            if response.status_code != 401 or not challenge.startswith("Bearer"):
                failures.append(f"{method.upper()} {path} -> {response.status_code}")
    return failures


def test_the_matrix_covers_the_api():
    # The schema is read, not empty: the known resources are all there.
    paths = {path for _, path in PROTECTED}
    assert {"/api/clients/", "/api/campaigns/{id}/start/", "/api/messages/{id}/"} <= paths
    assert len(PROTECTED) >= 30


@pytest.mark.parametrize("credential", BAD_CREDENTIALS)
def test_every_protected_operation_is_401(user, ids, credential):
    client = APIClient()
    make = BAD_CREDENTIALS[credential]
    if make is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make(user)}")

    assert _refusals(client, ids) == []


def test_a_valid_token_passes_the_same_matrix_reads(user, ids):
    # The control: the matrix's requests are refused for the credential, not for the path
    # (a resource with no row in `ids` may answer 404 for its made-up id, never 401).
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    for _method, schema_path in operations(public=False, methods=("get",)):
        path = concrete_path(schema_path, ids)
        expected = {200} if "{" not in schema_path or _resource(schema_path) in ids else {200, 404}
        assert client.get(path).status_code in expected, path


def _resource(schema_path: str) -> str:
    return schema_path.strip("/").split("/")[1]


@pytest.mark.parametrize("change", ["deactivated", "deleted"])
def test_a_gone_users_token_is_401_everywhere_once_the_remembered_user_expires(
    user, ids, settings, monkeypatch, change
):
    settings.AUTH_USER_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr("api.authentication.time.monotonic", lambda: clock[0])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    assert client.get("/api/").status_code == 200  # the worker now remembers the user
    if change == "deleted":
        get_user_model().objects.filter(pk=user.pk).delete()
    else:
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    clock[0] += settings.AUTH_USER_CACHE_SECONDS + 0.1

    assert _refusals(client, ids) == []


def _api_views(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, route)
        elif isinstance(pattern, URLPattern) and route.lstrip("^").startswith("api/"):
            yield route, pattern.callback


def test_every_api_view_in_the_url_conf_needs_a_token_or_is_listed_public():
    unlisted = []
    for route, callback in _api_views(get_resolver()):
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view is None:
            unlisted.append(f"{route}: not a DRF view (no authentication at all?)")
            continue
        initkwargs = getattr(callback, "initkwargs", {})
        permissions = initkwargs.get("permission_classes", view.permission_classes)
        public = not permissions or any(issubclass(p, AllowAny) for p in permissions)
        if public and view.__name__ not in PUBLIC_API_VIEWS:
            unlisted.append(f"{route}: {view.__name__} answers without a token")
    assert unlisted == [], (
        "Add each to PUBLIC_API_VIEWS in api/tests/test_security_proofs.py with the reason it"
        " may be public, or give it IsAuthenticated."
    )
