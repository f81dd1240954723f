"""One scenario's deployment: a fresh database, gunicorn, Celery workers, beat and the gateway,
each started with its Procfile command, on the suite's own Postgres cluster and Redis."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .processes import BIN, Proc, procfile_command, run, wait_for
from .services import PostgresCluster, RedisServer

WEB_PORT = int(os.environ.get("CHAOS_WEB_PORT", "18404"))
GATEWAY_PORT = int(os.environ.get("CHAOS_GATEWAY_PORT", "18403"))
TEMPLATE_DB = "chaos_template"
USERNAME = "chaos-operator"

# Small leases and intervals, so that a scenario sees several of each within a minute.
CHAOS_SETTINGS = {
    "DISPATCH_INTERVAL_SECONDS": "2",
    "DISPATCH_LEASE_SECONDS": "6",
    "DISPATCH_TASK_SECONDS": "5",
    "DISPATCH_BATCH_SIZE": "100",
    "SMS_CONCURRENCY": "10",
    "SMS_RETRY_BASE_SECONDS": "0.2",
    "SMS_RETRY_MAX_SECONDS": "1",
    "SMS_MAX_ATTEMPTS": "30",
    "SMS_CONNECT_TIMEOUT": "1",
    "SMS_READ_TIMEOUT": "1",
    "DATABASE_CONNECT_TIMEOUT": "2",
    "WORKER_CONCURRENCY": "2",
    "WEB_CONCURRENCY": "2",
    "WEB_THREADS": "2",
    "LOG_LEVEL": "INFO",
    "TOKEN_RATE_PER_IP": "1000/min",
    "TOKEN_RATE_PER_USERNAME": "1000/min",
}


@dataclass
class Secrets:
    """What the log scan looks for: none of it may appear in any process's output."""

    password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(18))
    gateway_token: str = field(default_factory=lambda: "gw-" + secrets.token_urlsafe(24))
    secret_key: str = field(default_factory=lambda: "sk-" + secrets.token_urlsafe(40))
    tokens: list[str] = field(default_factory=list)  # JWTs handed out during the suite


def base_env(cluster: PostgresCluster, redis: RedisServer, secret: Secrets, data: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CACHE_"))}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        DJANGO_SETTINGS_MODULE="Work.settings",
        DATA_DIR=str(data),
        DJANGO_SECRET_KEY=secret.secret_key,
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=secret.password,
        DATABASE_URL=cluster.url(TEMPLATE_DB),
        CELERY_BROKER_URL=redis.url(0),
        CACHE_URL=redis.url(1),
        SMS_GATEWAY_TOKEN=secret.gateway_token,
        SMS_GATEWAY_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
        PORT=str(WEB_PORT),
        GATEWAY_PORT=str(GATEWAY_PORT),
        PYTHONUNBUFFERED="1",
        **CHAOS_SETTINGS,
    )
    return env


def prepare_template(cluster: PostgresCluster, env: dict) -> None:
    """Migrate once into a template database; each scenario copies it (a second, not a
    migration)."""
    cluster.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
    cluster.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    run([sys.executable, "manage.py", "migrate", "-v0"], env=env)
    run([sys.executable, "manage.py", "ensure_superuser"], env=env)


SWEEP_SENT = re.compile(r"Sending due task dispatch sweep")
BEAT_STARTED = re.compile(r"beat: Starting")


def beat_lines(beat: Proc, pattern: re.Pattern) -> list[float]:
    """When this beat logged a line matching `pattern` (its JSON log lines, local time)."""
    times = []
    for line in beat.log.read_text().splitlines():
        if line.startswith("{") and pattern.search(line):
            times.append(datetime.fromisoformat(json.loads(line)["time"]).timestamp())
    return times


def sweeps_sent(beat: Proc) -> list[float]:
    return beat_lines(beat, SWEEP_SENT)


class Stack:
    def __init__(self, name: str, folder: Path, cluster: PostgresCluster, env: dict, **settings):
        self.name, self.folder, self.cluster = name, folder, cluster
        folder.mkdir(parents=True, exist_ok=True)
        self.database = f"chaos_{name}"
        cluster.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        cluster.execute(f"CREATE DATABASE {self.database} TEMPLATE {TEMPLATE_DB}")
        self.env = dict(env, DATA_DIR=str(folder), DATABASE_URL=cluster.url(self.database))
        self.env.update({key: str(value) for key, value in settings.items()})
        self.receipts = folder / "gateway-receipts.jsonl"
        self.procs: list[Proc] = []
        self.workers: list[Proc] = []
        self.beats: list[Proc] = []
        self.web: Proc | None = None
        self.gateway: Proc | None = None
        self.access_token = ""

    # -- processes ------------------------------------------------------------------------
    def _proc(self, role: str, name: str, extra: str = "", netns: str = "", **env) -> Proc:
        command = procfile_command(role) + (f" {extra}" if extra else "")
        proc = Proc(name, command, dict(self.env, **env), self.folder / f"{name}.log", netns)
        self.procs.append(proc.start())
        return proc

    def start_gateway(self, *, host: str = "127.0.0.1", faults: str = "", wait=True) -> Proc:
        extra = f"--token {self.env['SMS_GATEWAY_TOKEN']} --receipt-log {self.receipts} --control"
        self.gateway = self._proc(
            "gateway", "gateway", f"{extra} {faults}".strip(), GATEWAY_HOST=host
        )
        if wait:
            wait_for(lambda: self.gateway_control({}) is not None, timeout=60, what="gateway")
        return self.gateway

    def start_web(self, wait=True) -> Proc:
        self.web = self._proc("web", "web")
        if wait:
            self.wait_for_web()
        return self.web

    def wait_for_web(self) -> None:
        wait_for(lambda: self.get("/healthz", auth=False)[0] == 200, timeout=90, what="gunicorn")

    def start_worker(self, netns: str = "", **env) -> Proc:
        worker = self._proc("worker", f"worker{len(self.workers) + 1}", "", netns, **env)
        self.workers.append(worker)
        return worker

    def start_beat(self, **env) -> Proc:
        """Beat logs in JSON: then Celery's own lines (each sweep it sends) are logged too."""
        env.setdefault("LOG_FORMAT", "json")
        beat = self._proc("beat", f"beat{len(self.beats) + 1}", **env)
        self.beats.append(beat)
        return beat

    def start_all(self, *, workers: int = 1, gateway_faults: str = "") -> None:
        """Start every process at once (they start up side by side), then wait for the
        gateway and gunicorn to answer."""
        self.start_gateway(faults=gateway_faults, wait=False)
        self.start_web(wait=False)
        for _ in range(workers):
            self.start_worker()
        self.start_beat()
        wait_for(lambda: self.gateway_control({}) is not None, timeout=60, what="gateway")
        self.wait_for_web()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            # The gateway would wait for its never-answered requests before exiting.
            proc.stop(timeout=2 if proc.name == "gateway" else 15)

    # -- HTTP -----------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, *, auth=True, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - our own local server
            f"http://127.0.0.1:{WEB_PORT}{path}", data=data, method=method
        )
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.access_token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload or b"null")
            except ValueError:
                return error.code, payload.decode("utf-8", "replace")

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def log_in(self, secret) -> None:
        status, body = self.request(
            "POST", "/api/token/", {"username": USERNAME, "password": secret.password}, auth=False
        )
        assert status == 200, body
        self.access_token = body["access"]
        secret.tokens += [body["access"], body["refresh"]]

    def gateway_control(self, changes: dict, host: str = "127.0.0.1") -> dict | None:
        req = urllib.request.Request(  # noqa: S310 - our own local gateway
            f"http://{host}:{GATEWAY_PORT}/control", data=json.dumps(changes).encode()
        )
        with urllib.request.urlopen(req, timeout=5) as reply:  # noqa: S310
            return json.loads(reply.read())

    # -- data -----------------------------------------------------------------------------
    def django(self, code: str) -> str:
        """Run Python with Django set up against this scenario's database; returns stdout."""
        return run([sys.executable, "manage.py", "shell", "-c", code], env=self.env)

    def wait_until(self, predicate, *, timeout: float, what: str) -> float:
        return wait_for(predicate, timeout=timeout, every=0.5, what=f"{self.name}: {what}")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
