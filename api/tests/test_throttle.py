"""The token endpoints brake guessing: per address and per username, counted in a cache that
every gunicorn worker (and any other process) shares."""

import http.client
import json
import subprocess
import sys
import uuid

import pytest

from api.tests.conftest import TEST_REDIS_URL
from api.tests.servers import ROOT, gunicorn, scratch_env

PASSWORD = "s3cret-pass"


def _attempt(anon, username, password="wrong-password", address="10.0.0.1"):  # noqa: S107
    return anon.post(
        "/api/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr("api.throttles.time.time", lambda: now[0])
    return now


def test_a_hundred_wrong_passwords_do_not_stay_401s(anon, user, clock):
    codes = [_attempt(anon, "operator").status_code for _ in range(100)]

    assert codes[:10] == [401] * 10
    assert set(codes[10:]) == {429}
    throttled = _attempt(anon, "operator", PASSWORD)  # even the right one, until the window ends
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"]

    clock[0] += int(throttled["Retry-After"])
    assert _attempt(anon, "operator", PASSWORD).status_code == 200


def test_one_username_from_many_addresses_is_still_braked(anon, user, clock):
    codes = [_attempt(anon, "operator", address=f"10.0.{i}.1").status_code for i in range(12)]

    assert codes == [401] * 10 + [429] * 2


def test_one_address_trying_many_usernames_is_braked(anon, user, clock):
    codes = [_attempt(anon, f"user{i}").status_code for i in range(22)]

    assert codes == [401] * 20 + [429] * 2
    assert _attempt(anon, "operator", PASSWORD, address="10.9.9.9").status_code == 200


def test_refresh_and_blacklist_are_braked_per_address(anon, user, clock):
    codes = [
        anon.post("/api/token/refresh/", {"refresh": "x"}, format="json").status_code
        for _ in range(21)
    ]

    assert codes == [401] * 20 + [429]
    assert anon.post("/api/token/blacklist/", {"refresh": "x"}, format="json").status_code == 429


def test_rates_come_from_the_environment():
    from api.tests.test_settings import load_settings

    script_env = {"TOKEN_RATE_PER_USERNAME": "3/min", "TOKEN_RATE_PER_IP": "100/hour"}
    result = load_settings(**script_env)

    assert result.returncode == 0, result.stderr
    assert '"throttle": {"token_ip": "100/hour", "token_username": "3/min"}' in result.stdout


# --- the real thing: gunicorn with two workers, the counters in a shared cache ---------------
def _post_token(port, username):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"username": username, "password": "wrong"})
    conn.request("POST", "/api/token/", body, {"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()  # a new connection each time: the workers take turns accepting
    return status


@pytest.mark.parametrize("cache", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_every_gunicorn_worker_and_other_processes_share_the_count(tmp_path, cache):
    extra = {"CACHE_URL": TEST_REDIS_URL} if cache == "redis" else {}
    # A day-long window: 14 real PBKDF2 checks take seconds, and a minute window could end
    # in the middle of them (seen in CI: 7 + 7 attempts, no 429).
    env = scratch_env(tmp_path, TOKEN_RATE_PER_USERNAME="10/day", **extra)
    username = f"victim-{uuid.uuid4().hex[:8]}"
    with gunicorn(env, "--workers", "2", "--threads", "2") as port:
        codes = [_post_token(port, username) for _ in range(14)]

    assert codes == [401] * 10 + [429] * 4, codes
    # Another process (a second server, a management shell) sees the same count.
    other = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _OTHER_PROCESS, username],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert other.stdout.strip() == "429", other.stderr


_OTHER_PROCESS = """
import sys, django
django.setup()
from rest_framework.test import APIClient
response = APIClient().post(
    "/api/token/", {"username": sys.argv[1], "password": "wrong"}, format="json"
)
print(response.status_code)
"""
