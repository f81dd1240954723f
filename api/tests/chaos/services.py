"""The chaos suite's own Postgres cluster and Redis server, on ports of their own.

Scenarios kill and restart them (Redis restarted empty, Postgres restarted mid-run), so they
must never be the machine's shared servers: the cluster is initdb'd into a temporary folder
and both listen only on loopback (and, for the several-hosts scenario, on the host ends of the
network namespaces' links).
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import psycopg

from .processes import Proc, run, wait_for

PG_PORT = int(os.environ.get("CHAOS_PG_PORT", "18401"))
REDIS_PORT = int(os.environ.get("CHAOS_REDIS_PORT", "18402"))
GATEWAY_HOST_ANY = "0.0.0.0"  # noqa: S104 - the gateway seen from the namespaced workers


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def as_postgres(argv: list[str]) -> list[str]:
    """Postgres refuses to run as root: run its tools as the `postgres` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresCluster:
    def __init__(self, folder: Path, listen: list[str]):
        self.folder = folder
        self.data = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.listen = listen
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb")

    def url(self, database: str, host: str = "127.0.0.1") -> str:
        return f"postgres://postgres@{host}:{PG_PORT}/{database}"

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        run(
            as_postgres(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
                + ["--auth=trust", "-E", "UTF8", "--no-sync"]
            )
        )
        hba = self.data / "pg_hba.conf"
        hba.write_text(
            hba.read_text() + "host all all 10.198.0.0/16 trust\n"  # the namespaced workers
        )

    def start(self) -> None:
        options = (
            f"-p {PG_PORT} -k {self.folder} -c listen_addresses='{','.join(self.listen)}'"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200 -c shared_buffers=64MB"
        )
        run(
            as_postgres(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
                + ["-o", options, "-w", "-t", "60", "start"]
            )
        )

    def stop(self, mode: str = "fast") -> None:
        run(
            as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop"]),
            check=False,
        )

    def execute(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database).replace("postgres://", "postgresql://")) as conn:
            conn.autocommit = True
            conn.execute(sql)

    def connect(self, database: str) -> psycopg.Connection:
        url = self.url(database).replace("postgres://", "postgresql://")
        conn = psycopg.connect(url, connect_timeout=5)
        conn.autocommit = True
        return conn


class RedisServer:
    def __init__(self, folder: Path, listen: list[str]):
        self.folder = folder
        self.listen = listen
        self.proc: Proc | None = None

    def url(self, db: int = 0, host: str = "127.0.0.1") -> str:
        return f"redis://{host}:{REDIS_PORT}/{db}"

    def start(self) -> None:
        """Start empty: no RDB, no AOF (a restart loses every queued task, as in the issue)."""
        command = (
            f"redis-server --port {REDIS_PORT} --bind {' '.join(self.listen)}"
            f" --save '' --appendonly no --dir {self.folder} --protected-mode no"
        )
        self.proc = Proc("redis", command, dict(os.environ), self.folder / "redis.log").start()
        wait_for(self._answers, timeout=20, what="redis answers")

    def _answers(self) -> bool:
        import redis

        return redis.Redis.from_url(self.url(), socket_connect_timeout=1).ping()

    def kill(self) -> None:
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def wait_for_postgres(cluster: PostgresCluster, timeout: float = 60) -> float:
    def answers() -> bool:
        cluster.connect("postgres").close()
        return True

    return wait_for(answers, timeout=timeout, what="postgres answers")


def netns_usable() -> str:
    """'' when `ip netns` + veth work here, else the reason they do not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"tdsprobe{os.getpid() % 10000}"
    try:
        run(["ip", "netns", "add", probe])
        run(["ip", "netns", "del", probe])
    except (RuntimeError, FileNotFoundError) as exc:
        return f"`ip netns add` does not work here: {exc}"
    return ""


class Namespaces:
    """Worker "hosts": each a network namespace with two veth links to this host: one to
    Postgres and Redis (10.198.N.0/30), one to the gateway (10.199.N.0/30), the host ends .1.
    Cutting a host off from the database and the broker takes the first link down: packets
    vanish and connections hang, as on a real partition, while the gateway stays reachable."""

    LINKS = (("db", 198), ("gw", 199))

    def __init__(self, count: int):
        self.names = [f"tdschaos{n}" for n in range(1, count + 1)]

    @staticmethod
    def host_address(n: int, link: str = "db") -> str:
        return f"10.{dict(Namespaces.LINKS)[link]}.{n}.1"

    def create(self) -> None:
        self.destroy()
        for n, name in enumerate(self.names, start=1):
            run(["ip", "netns", "add", name])
            inside = ["ip", "netns", "exec", name]
            run([*inside, "ip", "link", "set", "lo", "up"])
            for link, net in self.LINKS:
                host_if, ns_if = f"tds{link}{n}h", f"tds{link}{n}n"
                run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
                run(["ip", "link", "set", ns_if, "netns", name])
                run(["ip", "addr", "add", f"10.{net}.{n}.1/30", "dev", host_if])
                run(["ip", "link", "set", host_if, "up"])
                run([*inside, "ip", "addr", "add", f"10.{net}.{n}.2/30", "dev", ns_if])
                run([*inside, "ip", "link", "set", ns_if, "up"])

    def cut(self, n: int, *, up: bool) -> None:
        """Take the host's database/broker link down (or bring it back)."""
        run(["ip", "link", "set", f"tdsdb{n}h", "up" if up else "down"])

    def destroy(self) -> None:
        for n, name in enumerate(self.names, start=1):
            for link, _ in self.LINKS:
                run(["ip", "link", "del", f"tds{link}{n}h"], check=False)
            run(["ip", "netns", "del", name], check=False)
