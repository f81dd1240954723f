"""Scenario 11: the clock jumps (NTP correction, a VM restored from a snapshot). Beat's
persisted schedule then holds a last run in the future (the clock went back) or long ago
(forward); either way the sweep must go on within one interval of beat's start.

The jump is written into beat's persisted schedule (what beat leaves behind after running
under a later time), and beat is started on it, as after a restore."""

import sys

from .processes import run
from .reconcile import Reconciliation, report
from .stack import BEAT_STARTED, beat_lines, sweeps_sent

INTERVAL = 2.0

JUMP = """
import shelve, sys
from datetime import UTC, datetime, timedelta
with shelve.open(sys.argv[1], writeback=True) as store:
    for entry in store["entries"].values():
        entry.last_run_at = datetime.now(UTC) + timedelta(seconds=float(sys.argv[2]))
"""


def test_beat_sweeps_within_one_interval_after_a_clock_jump(chaos, make_stack):
    stack = make_stack(DISPATCH_INTERVAL_SECONDS=INTERVAL)
    stack.start_gateway()
    stack.start_worker()
    beat = stack.start_beat()
    stack.wait_until(lambda: sweeps_sent(beat), timeout=120, what="a first sweep")
    result = Reconciliation(stack.name, counters="Counters match the messages.")
    for label, jump in (("back 2 h", 7200), ("forward 1 day", -86400)):
        beat.stop()
        run(
            [sys.executable, "-c", JUMP, str(stack.folder / "celerybeat-schedule"), str(jump)],
            env=stack.env,
        )
        beat = stack.start_beat()
        stack.wait_until(
            lambda b=beat: len(sweeps_sent(b)) >= 2,
            timeout=120,
            what=f"sweeps after a jump {label}",
        )
        (beat_start,) = beat_lines(beat, BEAT_STARTED)
        first, second = sweeps_sent(beat)[:2]
        result.extra[label] = {
            "first_sweep_after_beat_start_s": round(first - beat_start, 1),
            "gap_between_sweeps_s": round(second - first, 1),
        }
        # Within one interval of beat's start, then every interval.
        assert first - beat_start <= INTERVAL + 0.5, result.extra
        assert second - first <= INTERVAL + 1, result.extra
    report(result, chaos.results)
