"""Fixtures of the chaos suite (`pytest -m chaos`): its own Postgres cluster and Redis for the
session, a fresh deployment (database, gunicorn, workers, beat, gateway) per scenario.

CHAOS_SIZE=large for bigger runs; CHAOS_KEEP=1 keeps the folder with every log and receipt.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from .services import (
    Namespaces,
    PostgresCluster,
    RedisServer,
    netns_usable,
    postgres_bin,
    wait_for_postgres,
)
from .stack import Secrets, Stack, base_env, prepare_template

LARGE = os.environ.get("CHAOS_SIZE", "small").lower() == "large"
HOSTS = 2  # network namespaces for scenario 9


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if "api/tests/chaos/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.timeout(900))


class ChaosSession:
    def __init__(self, folder: Path):
        self.folder = folder
        self.secret = Secrets()
        self.netns_reason = netns_usable()
        self.hosts = Namespaces(HOSTS) if not self.netns_reason else None
        listen = ["127.0.0.1"]
        if self.hosts:
            listen += [Namespaces.host_address(n) for n in range(1, HOSTS + 1)]
        self.cluster = PostgresCluster(folder / "postgres", listen)
        self.redis = RedisServer(folder, listen)
        self.env = base_env(self.cluster, self.redis, self.secret, folder)
        self.results = folder / "results.jsonl"
        self.phones: list[str] = []  # every phone number a scenario created (the log scan)
        self.scenarios_run = 0

    def start(self) -> None:
        if self.hosts:
            self.hosts.create()
        self.cluster.init()
        self.cluster.start()
        wait_for_postgres(self.cluster)
        self.redis.start()
        prepare_template(self.cluster, self.env)

    def stop(self) -> None:
        self.redis.stop()
        self.cluster.stop("immediate")
        if self.hosts:
            self.hosts.destroy()


@pytest.fixture(scope="session")
def chaos():
    missing = [
        what
        for what, present in (
            ("PostgreSQL server binaries (/usr/lib/postgresql/*/bin)", postgres_bin()),
            ("redis-server", shutil.which("redis-server")),
        )
        if not present
    ]
    if missing:
        pytest.skip(f"the chaos suite starts its own servers and needs {', '.join(missing)}")
    folder = Path(tempfile.mkdtemp(prefix="tds-chaos-"))
    folder.chmod(0o755)
    session = ChaosSession(folder)
    try:
        session.start()
        yield session
    finally:
        session.stop()
        if os.environ.get("CHAOS_KEEP"):
            print(f"\n[chaos] logs and receipts kept in {folder}")  # noqa: T201
        else:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_stack(chaos, request):
    """Build a scenario's deployment; every process is stopped when the test ends."""
    stacks: list[Stack] = []

    def build(**settings) -> Stack:
        name = re.sub(r"[^a-z0-9]+", "_", request.node.name.removeprefix("test_").lower())[:40]
        stack = Stack(
            f"{name}{len(stacks) or ''}",
            chaos.folder / "scenarios" / name,
            chaos.cluster,
            chaos.env,
            **settings,
        )
        stacks.append(stack)
        chaos.scenarios_run += 1
        return stack

    yield build
    for stack in stacks:
        stack.stop()
