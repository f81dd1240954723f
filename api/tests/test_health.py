"""Liveness and readiness probes: no token, JSON, and 503 naming what is not ready."""

import json
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from api.tests.conftest import redis_url_if_reachable
from api.tests.servers import ROOT, scratch_env


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_token_and_answer_json(db, path):
    response = APIClient().get(path)

    assert response.status_code == 200
    assert response.json()["status"] in {"ok", "ready"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_readiness_checks_a_real_redis_broker(db, settings):
    url = redis_url_if_reachable()
    if not url:
        pytest.skip("needs Redis")
    settings.CELERY_BROKER_URL = url

    assert APIClient().get("/readyz").status_code == 200


def test_an_unreachable_broker_is_not_ready(db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = APIClient().get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == {"broker": "unreachable (OperationalError)"}


_PROBE = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(response.status_code, json.dumps(response.json()))
"""


def _probe(env):
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.split(" ", 1)
    return int(status), json.loads(body)


def test_a_database_without_migrations_is_not_ready(tmp_path):
    status, body = _probe(scratch_env(tmp_path))

    assert status == 503
    assert body["failing"] == {"database": "migrations not applied"}


def test_an_unreachable_database_is_not_ready(tmp_path):
    env = scratch_env(tmp_path, DATABASE_CONNECT_TIMEOUT="1")
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"

    status, body = _probe(env)

    assert status == 503
    assert body["failing"]["database"].startswith("unreachable")
    assert "password" not in json.dumps(body)
