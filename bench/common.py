"""Shared harness of the benchmark scripts: Django setup, timing, memory, output, results.

Every script calls `setup_django()` first. It points Django at a dedicated Postgres database
(`BENCH_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/tds_bench), creates it when
missing, runs the migrations and returns. Nothing here is imported by the service itself.
The database helpers are in bench/db.py, the fixtures in bench/fixtures.py, and the processes a
benchmark starts (gunicorn, the sink, workers) in bench/processes.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.db import ensure_database, postgres_settings, redact

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tds_bench"


# --- database and Django -------------------------------------------------------------------
def bench_database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def setup_django(
    *,
    extra_env: dict[str, str] | None = None,
    migrate: bool = True,
    database_url: str | None = None,
) -> str:
    """Point Django at the bench database (created if missing), migrate, django.setup().

    `extra_env` is applied before the settings are read (e.g. CELERY_BROKER_URL).
    `database_url` replaces BENCH_DATABASE_URL (the scripts with a database of their own).
    Returns the database URL in use.
    """
    url = database_url or bench_database_url()
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"The benchmarks need Postgres; BENCH_DATABASE_URL={url}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "Work.settings"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # plan/dispatch log lines would skew timings
    os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG keeps every query in memory
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-use")
    for key, value in (extra_env or {}).items():
        os.environ[key] = value
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    created = ensure_database(url)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    if created:
        print(f"created database {redact(url)}")
    return url


def arguments(doc: str) -> argparse.ArgumentParser:
    """The script's parser, described by its docstring's first line."""
    return argparse.ArgumentParser(description=doc.split("\n")[0])


def begin(title: str, *, extra: dict[str, str] | None = None, **setup) -> tuple[str, dict]:
    """setup_django(**setup), the title, then the machine, the database (and `extra`) and the
    git revision; returns (database URL, machine info)."""
    url = setup_django(**setup)
    header(title)
    machine = print_machine({"database": redact(url), **(extra or {}), "git": git_revision()})
    return url, machine


# --- timing --------------------------------------------------------------------------------
@contextmanager
def stopwatch():
    """with stopwatch() as elapsed: ...; elapsed() -> seconds (frozen at exit)."""
    started = time.perf_counter()
    result: list[float] = []
    yield lambda: result[0] if result else time.perf_counter() - started
    result.append(time.perf_counter() - started)


def time_calls(
    func: Callable[[], object],
    *,
    repeat: int,
    warmup: int = 0,
    before: Callable[[], object] | None = None,
) -> list[float]:
    """Seconds per call of `func`; `before` runs untimed ahead of each call."""
    for _ in range(warmup):
        if before:
            before()
        func()
    samples = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


def median(samples: Iterable[float]) -> float:
    return statistics.median(list(samples))


def percentile(samples: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median": median(samples),
        "p95": percentile(samples, 95),
        "min": min(samples),
        "max": max(samples),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


# --- memory (Linux /proc, no psutil) -------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def rss_kib() -> int:
    return _status_kib("VmRSS")


def hwm_kib() -> int:
    return _status_kib("VmHWM")


def reset_hwm() -> bool:
    """Reset VmHWM (the peak RSS) to the current RSS; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


@contextmanager
def peak_rss_growth():
    """with peak_rss_growth() as growth: ...; growth() -> MB (10**6 bytes) the peak RSS of this
    process rose above its RSS at the start of the block.

    Resets VmHWM via /proc/self/clear_refs so the peak is this block's own.
    """
    gc.collect()
    if not reset_hwm():
        raise RuntimeError("cannot reset VmHWM (/proc/self/clear_refs not writable)")
    before = rss_kib()
    result: list[float] = []
    yield lambda: result[0] if result else (hwm_kib() - before) * 1024 / 1e6
    result.append((hwm_kib() - before) * 1024 / 1e6)


# --- output --------------------------------------------------------------------------------
def print_table(headers: Sequence[str], rows: Iterable[Sequence], *, title: str = "") -> None:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    if title:
        print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                cell.rjust(w) if _numeric(cell) else cell.ljust(w)
                for cell, w in zip(row, widths, strict=False)
            )
        )


def _numeric(cell: str) -> bool:
    """Right-align figures ("12.3 ms", "1,000 (bench)"), not sentences that start with one."""
    words = cell.split()
    if not words or len(words) > 2:
        return False
    head = words[0].replace(",", "").replace(".", "").replace("%", "").lstrip("+-").rstrip("x")
    return head.isdigit()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_targets(targets: Sequence[Sequence], *, measured: str = "measured") -> None:
    """The targets table: rows of [target, measured, verdict]."""
    print_table(["target", measured, "verdict"], targets, title="Targets")


def exit_code(targets: Iterable[Sequence], strict: bool) -> int:
    """1 when `strict` and a target's verdict is FAIL, else 0."""
    return 1 if strict and any(row[2] == "FAIL" for row in targets) else 0


def header(title: str) -> None:
    print(f"\n=== {title} ===")


def machine_info() -> dict[str, str]:
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    try:
        with open("/proc/meminfo") as meminfo:
            total_kib = int(meminfo.readline().split()[1])
        info["ram"] = f"{total_kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
        info["loadavg"] = " ".join(f"{x:.2f}" for x in load)
    except OSError:
        pass
    return info


def print_machine(extra: dict[str, str] | None = None) -> dict[str, str]:
    info = machine_info()
    try:
        pg = postgres_settings()
        info["postgres"] = pg.pop("server_version", "?")
        info["pg_settings"] = ", ".join(f"{k}={v}" for k, v in sorted(pg.items()))
    except Exception as exc:  # noqa: BLE001 - machine info is best effort
        info["postgres"] = f"unknown ({type(exc).__name__})"
    info.update(extra or {})
    for key, value in info.items():
        print(f"{key:>12}: {value}")
    return info


def save_results(name: str, payload: dict) -> Path:
    """bench/results/<name>-<utc timestamp>.json (git-ignored) for later comparison."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nresults saved to {path.relative_to(ROOT)}")
    return path


def _git(*args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["git", "-C", str(ROOT), *args],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return completed.stdout.strip()


def git_revision() -> str:
    """Short HEAD, "+dirty" when api/ or Work/ have uncommitted changes."""
    try:
        dirty = _git("status", "--porcelain", "--", "api", "Work")
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
