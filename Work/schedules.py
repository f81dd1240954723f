"""Beat schedules that survive the clock jumping back.

Celery's interval schedule computes "due in (last run + interval - now)". Beat persists each
task's last run (celerybeat-schedule); if the clock then goes back (an NTP correction, a VM
restored from a snapshot, beat once run under a later time), that last run lies in the future
and the sweep is not sent again until the clock catches up with it: hours of nothing sent.
Here a last run in the future counts as due now, so sweeping goes on within one interval of any
jump, either way (a jump forward is already due at once).
"""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import schedstate, schedule

# Clocks of one host agree; a last run this far ahead can only be a jump back.
FUTURE_TOLERANCE = timedelta(seconds=1)


class ClockSafeSchedule(schedule):
    def is_due(self, last_run_at):
        if last_run_at is not None:
            last = self.maybe_make_aware(last_run_at)
            if last > self.maybe_make_aware(self.now()) + FUTURE_TOLERANCE:
                return schedstate(is_due=True, next=self.seconds)
        return super().is_due(last_run_at)


def every(seconds: float) -> ClockSafeSchedule:
    return ClockSafeSchedule(run_every=timedelta(seconds=seconds))
