"""Where the box's CPU went during a window: the API (gunicorn and its workers), the dispatch
(this process's forked children), our Postgres backends, the sink and wrk, and everything
else on the machine (other users of a shared box), from /proc (Linux, no psutil)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds used so far) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICKS


def _box_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS


def snapshot(roles: dict[int, str], database_pids: set[int]) -> dict[str, float]:
    """CPU seconds so far by role: each pid in `roles` with its descendants, the Postgres
    backends in `database_pids` as "postgres (ours)", this process's other children as
    "dispatch", and the machine's total as "box"."""
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            processes[int(entry)] = stat
    totals = dict.fromkeys([*roles.values(), "dispatch", "postgres (ours)"], 0.0)
    me = os.getpid()
    for pid, (_, _, seconds) in processes.items():
        role, ancestor = None, pid
        while ancestor in processes and role is None:
            role = roles.get(ancestor)
            parent = processes[ancestor][0]
            if role is None and parent == me and ancestor != me:
                role = "dispatch"
            ancestor = parent if parent != ancestor else 0
        if pid in database_pids:
            role = "postgres (ours)"
        if role is not None:
            totals[role] += seconds
    totals["box"] = _box_seconds()
    return totals


def shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used on average by each role between two snapshots, and "other" (the rest of
    the box). A process that ended in between is not counted (its time goes to "other")."""
    used = {role: max(0.0, after[role] - before.get(role, 0.0)) / seconds for role in after}
    ours = sum(value for role, value in used.items() if role != "box")
    used["other"] = max(0.0, used["box"] - ours)
    return used
