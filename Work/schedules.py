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

from celery.schedules import crontab, schedstate, schedule

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


class ClockSafeCrontab(crontab):
    """A crontab (the daily report) whose last run in the future counts as now: due at the
    next matching time after a jump back, not once the clock has caught up with the old run.
    (Firing at once would be harmless too: the report service decides which days are due.)"""

    def is_due(self, last_run_at):
        now = self.maybe_make_aware(self.now())
        if last_run_at is not None and self.maybe_make_aware(last_run_at) > now + FUTURE_TOLERANCE:
            last_run_at = now
        return super().is_due(last_run_at)


def daily_at(hour: int, minute: int) -> ClockSafeCrontab:
    return ClockSafeCrontab(hour=hour, minute=minute)
