"""`make bench`: every benchmark once with small sizes, for a quick overview (a few minutes).

The figures to quote come from the full-size runs (see bench/README.md); this is a smoke run
that shows each script works and which targets look at risk. Each script runs in its own
process (so each one's memory figures are its own); a failing script does not stop the rest.

    .venv/bin/python bench/run_all.py                 # all, small sizes
    .venv/bin/python bench/run_all.py planning sweep  # a subset
    .venv/bin/python bench/run_all.py --full          # the full sizes of bench/README.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

QUICK = {
    "planning": ["--clients", "100000", "--repeat", "1"],
    "sweep": [
        "--messages",
        "100000",
        "--sent",
        "20000",
        "--dead",
        "20000",
        "--calls",
        "20",
        "--due-calls",
        "5",
    ],
    "start": ["--clients", "100000", "--starts", "10", "--warmup", "2"],
    "dispatch": ["--messages", "20000", "--repeat", "1"],
    "api": ["--messages", "100000", "--requests", "100"],
    "compaction": ["--runs", "100", "--clients", "50", "--calls", "10"],
    "faults": ["kill", "--messages", "1000", "--kills", "2", "--error-rate", "0.45"],
    "console": ["--messages", "100000", "--campaigns", "20", "--calls", "5", "--update-ab", "1"],
    "import": ["--rows", "100000", "--repeat", "1"],
}
FULL = {
    "planning": ["--clients", "1000000", "--repeat", "3"],
    "sweep": ["--messages", "1000000"],
    "start": ["--clients", "1000000", "--starts", "20"],
    "dispatch": ["--messages", "100000", "--repeat", "3"],
    "api": ["--messages", "1000000", "--requests", "300"],
    "compaction": ["--runs", "1000", "--clients", "100"],
    # pg-restart cuts every client of the server: run it by hand (see bench/README.md).
    "faults": ["kill", "--messages", "2000", "--kills", "3", "--error-rate", "0.45"],
    "console": ["--messages", "1000000", "--campaigns", "100", "--calls", "15"],
    "import": ["--rows", "1000000", "--repeat", "3"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(QUICK)}")
    parser.add_argument("--full", action="store_true", help="full sizes (tens of minutes)")
    args = parser.parse_args(argv)

    plan = FULL if args.full else QUICK
    names = args.names or list(plan)
    unknown = [n for n in names if n not in plan]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    outcomes = []
    for name in names:
        script = BENCH / f"bench_{name}.py"
        if not script.exists():
            outcomes.append((name, "missing", 0.0))
            continue
        command = [sys.executable, str(script), *plan[name]]
        print(f"\n##### {' '.join([f'bench/{script.name}', *plan[name]])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=ROOT)  # noqa: S603 - our own scripts
        outcomes.append((name, "ok" if code == 0 else f"exit {code}", time.monotonic() - started))
    print("\n##### summary")
    for name, outcome, seconds in outcomes:
        print(f"  bench_{name}.py: {outcome} ({seconds:.0f} s)")
    print("Targets and their PASS/FAIL are in each script's output above.")
    return 0 if all(outcome in ("ok", "missing") for _, outcome, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
