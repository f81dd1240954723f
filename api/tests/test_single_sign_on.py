"""Single sign-on for the admin, end to end: a real OpenID provider (django-oidc-provider,
devtools/sso_provider) in its own process, the service on pytest-django's live server, and an
HTTP client following the real redirects and forms: no token is made up or mocked."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model

from api.models import SingleSignOnIdentity

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_PORT = 18221  # in this helper's port range
PROVIDER = f"http://127.0.0.1:{PROVIDER_PORT}/openid"
CLIENT_ID, CLIENT_SECRET = "task-delay-admin", "provider-secret-for-tests"
USERS = [
    "alice:alice-pass:operators:alice@example.com",  # staff
    "carol:carol-pass:operators,admins",  # superuser
    "bob:bob-pass:",  # no group: no admin access
]


def provider_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["SSO_PROVIDER_DB"] = str(tmp_path / "provider.sqlite3")
    return env


@pytest.fixture(scope="module")
def provider(tmp_path_factory, live_server):
    """The OpenID provider, seeded with this service's callback and three users."""
    env = provider_env(tmp_path_factory.mktemp("provider"))
    command = [sys.executable, "-m", "devtools.sso_provider"]
    seed = ["seed", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
    seed += ["--redirect-uri", f"{live_server.url}/oidc/callback/"]
    for user in USERS:
        seed += ["--user", user]
    subprocess.run(command + seed, cwd=ROOT, env=env, check=True)  # noqa: S603
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and dev project
        command + ["runserver", f"127.0.0.1:{PROVIDER_PORT}", "--noreload", "--nothreading"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", PROVIDER_PORT), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the OpenID provider did not start") from None
                time.sleep(0.2)
        yield PROVIDER
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def sso_settings(settings, provider):
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.OIDC_OP_ISSUER = provider
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{provider}/jwks"
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_STAFF_GROUP, settings.OIDC_SUPERUSER_GROUP = "operators", "admins"
    return settings


def sign_in_with_sso(
    service_url: str, username: str, password: str, browser: requests.Session | None = None
) -> requests.Response:
    """Open the admin login page, follow its "Log in with SSO" link to the provider, sign in
    there, and follow the redirects back; the last response."""
    browser = browser or requests.Session()
    login_page = browser.get(f"{service_url}/admin/login/?next=/admin/", timeout=30)
    link = re.search(r'<a class="button" href="([^"]+)">Log in with SSO</a>', login_page.text)
    assert link, "no single sign-on link on the admin login page"
    provider_login = browser.get(service_url + unescape(link.group(1)), timeout=30)
    assert provider_login.url.startswith(f"http://127.0.0.1:{PROVIDER_PORT}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', provider_login.text)
    next_url = re.search(r'name="next" value="([^"]*)"', provider_login.text)
    return browser.post(
        provider_login.url,
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": username,
            "password": password,
            "next": unescape(next_url.group(1)),
        },
        headers={"Referer": provider_login.url},
        timeout=30,
    )


@pytest.mark.django_db(transaction=True)
def test_a_staff_group_member_signs_in_to_the_admin_through_the_provider(live_server, sso_settings):
    user_model = get_user_model()
    # A local superuser with the same e-mail: single sign-on must not take it over.
    root = user_model.objects.create_superuser("root", "alice@example.com", "root-pass")

    final = sign_in_with_sso(live_server.url, "alice", "alice-pass")

    assert final.url == f"{live_server.url}/admin/"
    assert "Site administration" in final.text and "alice" in final.text
    identity = SingleSignOnIdentity.objects.select_related("user").get()
    assert identity.issuer == sso_settings.OIDC_OP_ISSUER and identity.subject
    alice = identity.user
    assert alice.pk != root.pk and alice.username == "alice"
    assert (alice.is_staff, alice.is_superuser, alice.email) == (True, False, "alice@example.com")
    assert not alice.has_usable_password()

    again = sign_in_with_sso(live_server.url, "alice", "alice-pass")  # the same account
    assert again.url == f"{live_server.url}/admin/"
    assert SingleSignOnIdentity.objects.count() == 1 and user_model.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_superuser_group_makes_a_superuser(live_server, sso_settings):
    final = sign_in_with_sso(live_server.url, "carol", "carol-pass")
    assert final.url == f"{live_server.url}/admin/"
    carol = SingleSignOnIdentity.objects.get().user
    assert carol.is_staff and carol.is_superuser


@pytest.mark.django_db(transaction=True)
def test_no_staff_group_no_account_and_no_admin(live_server, sso_settings):
    final = sign_in_with_sso(live_server.url, "bob", "bob-pass")
    assert final.url == f"{live_server.url}/admin/login/?sso=refused"
    assert "not in the staff group" in final.text
    assert not get_user_model().objects.exists() and not SingleSignOnIdentity.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_user_deactivated_here_is_refused(live_server, sso_settings):
    signed_in = requests.Session()
    assert sign_in_with_sso(live_server.url, "alice", "alice-pass", signed_in).url.endswith(
        "/admin/"
    )
    get_user_model().objects.filter(username="alice").update(is_active=False)
    # The open session is over at its next request...
    assert signed_in.get(f"{live_server.url}/admin/", timeout=30).url.startswith(
        f"{live_server.url}/admin/login/"
    )

    final = sign_in_with_sso(live_server.url, "alice", "alice-pass")  # ... and no new one

    assert final.url == f"{live_server.url}/admin/login/?sso=refused"
    assert "Site administration" not in final.text and 'name="password"' in final.text


def test_without_configuration_the_password_login_stays_and_sso_is_off(client, settings, db):
    settings.OIDC_RP_CLIENT_ID = ""
    get_user_model().objects.create_superuser("root", "root@example.com", "root-pass")
    page = client.get("/admin/login/")
    assert page.status_code == 200 and b"Log in with SSO" not in page.content
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    signed_in = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "root-pass"}, follow=True
    )
    assert (
        signed_in.redirect_chain[-1][0] == "/admin/" and b"Site administration" in signed_in.content
    )


def test_a_session_of_a_deactivated_user_resolves_to_no_user(db, settings):
    from api.sso.backend import AdminSingleSignOnBackend

    settings.OIDC_RP_CLIENT_ID = ""
    user = get_user_model().objects.create_user("dora", is_staff=True)
    assert AdminSingleSignOnBackend().get_user(user.pk) == user
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert AdminSingleSignOnBackend().get_user(user.pk) is None  # not only the admin refuses


def test_the_endpoints_come_from_the_providers_discovery_document(provider, sso_settings):
    from io import StringIO

    from django.core.management import call_command

    output = StringIO()
    call_command("oidc_endpoints", provider, stdout=output)
    lines = dict(line.split("=", 1) for line in output.getvalue().splitlines())
    assert lines == {
        name: getattr(sso_settings, name)
        for name in (
            "OIDC_OP_ISSUER",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
        )
    }


def test_no_discovery_document_is_a_command_error():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no discovery document at http://127.0.0.1:18209/"):
        call_command("oidc_endpoints", "http://127.0.0.1:18209", "--timeout", "2")
