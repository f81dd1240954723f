"""schemathesis against the served schema, as an attacker would run it: a real gunicorn, a real
token, every check. 0 server errors and 0 schema-conformance failures, or the suite is red.
Business-rule answers the schema declares (a duplicate phone, a cursor not from us...) are
listed in schemathesis.toml. Bounded to about a minute; `SCHEMATHESIS_MAX_EXAMPLES` and
`SCHEMATHESIS_MAX_TIME` make it longer (e.g. 100 and 900 before a release)."""

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.tests.servers import ROOT, gunicorn, scratch_env

ST = Path(sys.executable).with_name("st")
MAX_TIME = int(os.environ.get("SCHEMATHESIS_MAX_TIME", "60"))
SEED_DATA = """
import django
django.setup()
from django.contrib.auth import get_user_model
from api.tests.factories import CampaignFactory, ClientFactory, MessageFactory
get_user_model().objects.create_user("fuzzer", password="fuzzer-password-1")
ClientFactory(phone_number="79000000001", tag="vip", mobile_operator_code="900")
MessageFactory()
CampaignFactory()
"""


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed (requirements-dev)")
@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="runs once, in the SQLite pass: the server under test has its own scratch database",
)
@pytest.mark.timeout(MAX_TIME + 360)
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(tmp_path):
    env = scratch_env(
        tmp_path, TOKEN_RATE_PER_IP="100000/min", TOKEN_RATE_PER_USERNAME="100000/min"
    )
    with gunicorn(env, "--workers", "2", "--threads", "4") as port:
        subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", SEED_DATA], cwd=ROOT, env=env, check=True
        )
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"username": "fuzzer", "password": "fuzzer-password-1"})
        conn.request("POST", "/api/token/", body, {"Content-Type": "application/json"})
        token = json.loads(conn.getresponse().read())["access"]
        result = subprocess.run(  # noqa: S603
            [str(ST), "--no-color", "run", f"http://127.0.0.1:{port}/api/schema/"]
            + ["-H", f"Authorization: Bearer {token}", "--checks", "all", "--seed", "1"]
            + ["-n", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5")]
            + ["--max-time", str(MAX_TIME)],
            cwd=ROOT,  # schemathesis.toml
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=MAX_TIME + 300,
        )
    summary = result.stdout[result.stdout.find("SUMMARY") :] or result.stdout[-3000:]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested:" in summary, summary
