"""Beat's interval and daily schedules keep going after the clock jumps (Work/schedules.py)."""

from datetime import UTC, datetime, timedelta

from Work.celery import app
from Work.schedules import ClockSafeCrontab, ClockSafeSchedule, daily_at, every


def test_a_last_run_in_the_future_is_due_at_once():
    sweep = every(60)
    state = sweep.is_due(datetime.now(UTC) + timedelta(hours=2))  # the clock went back 2 h
    assert state.is_due and state.next == 60


def test_a_recent_last_run_waits_for_its_interval():
    state = every(60).is_due(datetime.now(UTC) - timedelta(seconds=10))
    assert not state.is_due and 45 < state.next <= 50


def test_a_last_run_long_ago_is_due_at_once():
    assert every(60).is_due(datetime.now(UTC) - timedelta(days=1)).is_due  # jumped forward


def test_every_periodic_task_of_beat_uses_the_clock_safe_schedule():
    app.loader.import_default_modules()
    app.finalize()
    schedule = app.conf.beat_schedule
    assert {"dispatch sweep", "message partition compaction"} <= set(schedule)
    safe = (ClockSafeSchedule, ClockSafeCrontab)
    assert all(isinstance(entry["schedule"], safe) for entry in schedule.values())


def test_a_daily_time_after_a_jump_back_is_due_at_its_next_time_not_the_old_runs():
    report = daily_at(8, 0)
    now = report.maybe_make_aware(report.now())
    state = report.is_due(now + timedelta(days=3))  # the last run lies 3 days ahead
    assert not state.is_due and 0 < state.next <= 24 * 3600  # the next 08:00, not in 3 days
    plain = report.is_due(now - timedelta(minutes=1))
    assert 0 < plain.next <= 24 * 3600
