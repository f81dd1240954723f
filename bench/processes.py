"""What a benchmark starts beside itself, and how it talks to it: a free port, gunicorn, the
sink (bench/sink.py), forked measuring processes, Redis, and HTTP calls to the API."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    process: subprocess.Popen, port: int, *, name: str, timeout: float = 30
) -> subprocess.Popen:
    """`process` once something accepts connections on `port`; exits when it dies or the port
    stays closed for `timeout` seconds (the process is stopped then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return process
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit(f"{name} did not answer within {timeout:.0f} s")


def stop(*processes: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM each running process, wait up to `timeout` s each, SIGKILL the ones left."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_gunicorn(port: int, env: dict[str, str]) -> subprocess.Popen:
    """The API as `make run` serves it (4 workers x 2 threads) on 127.0.0.1:`port`."""
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    command = [gunicorn, "Work.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "4", "--threads", "2", "--log-level", "warning"]
    env = {**env, "GUNICORN_ACCESS_LOG": "off"}  # as measured before: no access-log writes
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - fixed args
    return wait_for_port(process, port, name="gunicorn")


def start_sink(port: int, latency_ms: float = 0.0) -> subprocess.Popen:
    """bench/sink.py (the gateway's wire format, nothing else) on 127.0.0.1:`port`."""
    command = [sys.executable, str(ROOT / "bench" / "sink.py"), "--port", str(port)]
    if latency_ms:
        command += ["--latency-ms", str(latency_ms)]
    sink = subprocess.Popen(  # noqa: S603 - our own benchmark sink
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DATABASE_URL": ""},
    )
    return wait_for_port(sink, port, name="sink")


def gateway_stats(port: int) -> dict:
    """GET /stats of the sink or of `manage.py fake_gateway`: requests, delivered, duplicates."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as reply:  # noqa: S310
        return json.load(reply)


def fork_and_collect(
    target: Callable, arguments: Iterable[tuple], *, timeout: float = 3600
) -> tuple[float, list]:
    """target(*args, queue) in one forked process per args tuple, all at once; returns the
    seconds until every one has put its result on the queue, and the results (in the order
    they arrived)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    processes = [context.Process(target=target, args=(*args, queue)) for args in arguments]
    for process in processes:
        process.start()
    results: list = []
    deadline = started + timeout
    while len(results) < len(processes):
        try:
            results.append(queue.get(timeout=1.0))
        except Empty:
            # A child that died without a result (an import error, a crash) would otherwise
            # leave the bench waiting until the timeout.
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead or time.perf_counter() > deadline:
                for process in processes:
                    process.kill()
                raise RuntimeError(
                    f"{len(results)} of {len(processes)} workers reported;"
                    f" exit codes {[p.exitcode for p in processes]}"
                ) from None
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return elapsed, results


def flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def request(conn: http.client.HTTPConnection, method: str, path: str, body=None, token=""):
    """(status, body bytes, seconds) of one JSON request, timed at the client."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body) if body is not None else None
    started = time.perf_counter()
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    return response.status, data, elapsed


def obtain_token(conn: http.client.HTTPConnection, username: str, password: str) -> str:
    """A JWT access token from `POST /api/token/` (exits when the API refuses)."""
    status, data, _ = request(
        conn, "POST", "/api/token/", {"username": username, "password": password}
    )
    if status != 200:
        raise SystemExit(f"POST /api/token/ answered {status}: {data[:200]!r}")
    return json.loads(data)["access"]
