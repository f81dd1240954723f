"""The compose stack, without Docker: docker-compose.yml is valid Compose, the Dockerfile passes
hadolint, and the services' commands — read out of docker-compose.yml, run through
entrypoint.sh and the Procfile exactly as in the containers — migrate, serve, dispatch a campaign
through the fake gateway and answer /readyz, against the local Postgres and Redis."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from api.tests.conftest import TEST_REDIS_URL
from api.tests.servers import ROOT, free_port

BIN = Path(sys.executable).parent


def test_the_compose_file_is_valid_compose():
    result = subprocess.run(  # noqa: S603 - a tool of our dev requirements
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
        + ["docker-compose.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run(  # noqa: S603
        [str(BIN / "hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_services_are_the_procfile_processes():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    procfile = {
        line.split(":", 1)[0]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    }
    services = compose["services"]
    for name in ("api", "worker", "beat", "gateway"):
        assert services[name]["command"][0] in procfile, name
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["db"]["image"].startswith("postgres:16")
    # What the image needs holds even when .env is a copy of .env.example (DEBUG on, .data).
    environment = services["api"]["environment"]
    assert environment["DJANGO_DEBUG"] == "false"
    assert environment["DATA_DIR"] == "/var/lib/tds"
    assert environment["BIND_ADDRESS"] == "0.0.0.0"  # noqa: S104 - inside the container
    assert "noeviction" in services["redis"]["command"]
    assert "appendonly" in " ".join(services["redis"]["command"])


def _interpolate(value: str, overrides: dict[str, str]) -> str:
    def one(match):
        name, default = match.group(1), match.group(3) or ""
        return overrides.get(name, os.environ.get(name, default))

    return re.sub(r"\$\{(\w+)(:[-?]([^}]*))?\}", one, str(value))


def _wait_http(url: str, seconds: float, processes) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{url} did not answer 200"
        time.sleep(0.5)


def _call(url, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _scrape(url: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=10).read().decode()  # noqa: S310 - local
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.postgres
@pytest.mark.redis
def test_the_compose_commands_deliver_a_campaign(tmp_path, django_db_blocker):
    import psycopg

    admin_url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://")
    database = f"tds_smoke_{os.getpid()}"
    with django_db_blocker.unblock(), psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    base = admin_url.rsplit("/", 1)[0]
    port, gateway_port = free_port(), free_port()
    overrides = {
        "DATABASE_URL": f"{base}/{database}".replace("postgresql://", "postgres://"),
        "DATABASE_WAIT_SECONDS": "5",
        "CELERY_BROKER_URL": TEST_REDIS_URL.rsplit("/", 1)[0] + "/12",
        "CACHE_URL": TEST_REDIS_URL.rsplit("/", 1)[0] + "/12",
        "DJANGO_SECRET_KEY": "compose-smoke-" + "s" * 40,
        "SMS_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "SMS_GATEWAY_TOKEN": "smoke-token",
        "DJANGO_SUPERUSER_USERNAME": "smoke",
        "DJANGO_SUPERUSER_PASSWORD": "smoke-password-1",
    }
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    def env_of(service: str, **extra) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CACHE_"))}
        env.pop("DATABASE_URL", None)
        for key, value in services[service]["environment"].items():
            # An overridden variable replaces the whole value (its default may nest ${...}).
            env[key] = overrides[key] if key in overrides else _interpolate(value, overrides)
        # What the image's ENV would set; ports and folders local to this test.
        env.update(
            PATH=f"{BIN}:{env['PATH']}",
            DATA_DIR=str(tmp_path),
            STATIC_ROOT=str(tmp_path / "static"),
            DJANGO_DEBUG="false",
            BIND_ADDRESS="127.0.0.1",
            PORT=str(port),
            GATEWAY_HOST="127.0.0.1",
            GATEWAY_PORT=str(gateway_port),
            DISPATCH_INTERVAL_SECONDS="2",
            LOG_LEVEL="DEBUG",  # a line per message claimed and per outcome: followed below
            **extra,
        )
        if "WORKER_METRICS_PORT" in env:  # the compose port, taken by each worker: one each here
            env["WORKER_METRICS_PORT"] = str(free_port())
        return env

    import redis

    redis.Redis.from_url(overrides["CELERY_BROKER_URL"]).flushdb()
    migrate = subprocess.run(  # noqa: S603 - our entrypoint
        ["./entrypoint.sh", *services["migrate"]["command"]],
        cwd=ROOT,
        env=env_of("migrate"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]

    logs = {}
    processes = {}
    worker_ports: dict[str, int] = {}
    plan = [("gateway", 1), ("api", 1), ("worker", 2), ("beat", 1)]
    try:
        for service, count in plan:
            for index in range(count):
                name = f"{service}.{index + 1}"
                logs[name] = (tmp_path / f"{name}.log").open("w")
                env = env_of(service if service != "gateway" else "api")
                if service == "worker":
                    worker_ports[name] = int(env["WORKER_METRICS_PORT"])
                processes[name] = subprocess.Popen(  # noqa: S603
                    ["./entrypoint.sh", *services[service]["command"]],
                    cwd=ROOT,
                    env=env,
                    stdout=logs[name],
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        api = f"http://127.0.0.1:{port}"
        _wait_http(f"{api}/readyz", 60, processes)
        token = _call(
            f"{api}/api/token/", body={"username": "smoke", "password": "smoke-password-1"}
        )["access"]
        for i in range(5):
            _call(
                f"{api}/api/clients/",
                token,
                {"phone_number": f"7900000000{i}", "mobile_operator_code": "900", "tag": "smoke"},
            )
        now = time.time()
        campaign = _call(
            f"{api}/api/campaigns/",
            token,
            {
                "text_message": "compose smoke",
                "tag": "smoke",
                "start_datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
                "end_datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
            },
        )
        deadline = time.monotonic() + 90
        while True:
            stats = _call(f"{api}/api/campaigns/{campaign['id']}/stats/", token)
            if stats["sent_messages"] == 5:
                break
            assert stats["failed_messages"] == 0, stats
            for name, process in processes.items():
                assert process.poll() is None, f"{name} exited"
            assert time.monotonic() < deadline, stats
            time.sleep(1)
        assert stats["status"] == "finished" or stats["pending_messages"] == 0
        message = _call(f"{api}/api/messages/?campaign={campaign['id']}", token)["results"][0]
        api_metrics = _scrape(f"{api}/metrics")
        worker_metrics = [
            _scrape(f"http://127.0.0.1:{worker_ports[name]}/metrics") for name in worker_ports
        ]
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in processes.items():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            logs[name].close()
        with django_db_blocker.unblock(), psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(tmp_path / "static", ignore_errors=True)

    # Metrics: the state once from the API, the sends summed over each worker's processes.
    assert _value(api_metrics, "tds_messages", status="sent") == 5
    assert _value(api_metrics, "tds_messages_due") == 0
    assert _value(api_metrics, "tds_last_sweep_timestamp_seconds") > now - 120
    assert _value(api_metrics, "tds_broker_queue_length", queue="celery") >= 0
    stats_calls = _value(
        api_metrics,
        "tds_http_request_duration_seconds_count",
        method="GET",
        route="campaign-stats",
        status="200",
    )
    assert stats_calls >= 1
    assert sum(_value(m, "tds_sends_total", outcome="sent") for m in worker_metrics) == 5
    assert sum(_value(m, "tds_gateway_responses_total", code="200") for m in worker_metrics) == 5
    assert sum(_value(m, "tds_send_duration_seconds_count") for m in worker_metrics) == 5
    assert sum(_value(m, "tds_planned_messages_total") for m in worker_metrics) == 5

    # Logs (LOG_FORMAT=json from the compose file): every line of every process is one JSON
    # object, no full phone and no secret anywhere, and one message can be followed by its id.
    lines = []
    for name in logs:
        if name.startswith("gateway"):
            continue  # the development gateway is not the service
        for raw in (tmp_path / f"{name}.log").read_text().splitlines():
            if not raw.strip() or raw.startswith("worker: Warm shutdown"):
                continue  # Celery prints this one outside its logging (README "Logs")
            try:
                lines.append((name, json.loads(raw)))
            except ValueError:
                pytest.fail(f"{name} wrote a line that is not JSON: {raw[:300]}")
    text = "\n".join(json.dumps(line) for _, line in lines)
    for i in range(5):
        assert f"7900000000{i}" not in text
    for secret in ("smoke-token", "smoke-password-1", overrides["DJANGO_SECRET_KEY"], token):
        assert secret not in text
    trail = [line for _, line in lines if line.get("message_id") == message["id"]]
    assert [line["message"] for line in trail] == ["message claimed attempt=1", "message sent"]
    for line in trail:
        assert line["run_id"] == message["id"] >> 32
        assert line["campaign_id"] == campaign["id"]
        assert line["client_id"] == message["id"] & 0xFFFFFFFF
    created = [
        line
        for name, line in lines
        if name.startswith("api") and line.get("campaign_id") == campaign["id"]
    ]
    assert created and all(line.get("request_id") for line in created)
    access = [line for name, line in lines if line.get("logger") == "api.access"]
    assert any(line.get("route") == "campaign-stats" for line in access)
    assert not [line for _, line in lines if line.get("logger") == "gunicorn.access"]  # once
    planned = [line for _, line in lines if line["message"].startswith("run planned")]
    assert planned[0]["campaign_id"] == campaign["id"]


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        (".github/workflows/ci.yml", "vendor.github-workflows"),
        (".gitlab-ci.yml", "vendor.gitlab-ci"),
    ],
)
def test_the_ci_files_are_valid_and_run_make_test(path, schema):
    result = subprocess.run(  # noqa: S603 - a tool of our dev requirements
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, path],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "make test" in (ROOT / path).read_text()
