"""Planning: per-zone send times (DST, wrap-around windows, the end), set-based and idempotent."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import CampaignRun, CampaignStatus, Client, MessageStatus, RunStatus
from api.services.planning import plan_run
from api.services.send_window import in_window, next_send_time
from api.tests.factories import CampaignFactory, ClientFactory

END = datetime(2031, 1, 1, tzinfo=UTC)


def at(*args):
    return datetime(*args, tzinfo=UTC)


def send_time(not_before, start, end, zone, end_at=END):
    return next_send_time(
        not_before=not_before,
        end=end_at,
        window_start=start,
        window_end=end,
        timezone_name=zone,
    )


# --- the window rule -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("local", "expected"),
    [(time(21, 59), False), (time(22, 0), True), (time(3, 0), True), (time(6, 0), False)],
)
def test_a_window_that_wraps_midnight(local, expected):
    assert in_window(local, time(22, 0), time(6, 0)) is expected


def test_no_window_means_the_whole_day():
    moment = at(2030, 5, 1, 3, 17)
    assert send_time(moment, None, None, "Asia/Tokyo") == moment


def test_inside_the_window_sends_at_once():
    # 12:00 UTC is 15:00 in Moscow (UTC+3), inside 09:00-21:00.
    moment = at(2030, 5, 1, 12, 0)
    assert send_time(moment, time(9), time(21), "Europe/Moscow") == moment


def test_before_the_window_waits_for_its_local_opening():
    # 03:00 UTC = 06:00 Moscow; the window opens at 09:00 Moscow = 06:00 UTC.
    assert send_time(at(2030, 5, 1, 3), time(9), time(21), "Europe/Moscow") == at(2030, 5, 1, 6)


def test_after_the_window_waits_for_the_next_day():
    # 19:00 UTC = 22:00 Moscow, after 21:00: next opening 09:00 Moscow tomorrow.
    assert send_time(at(2030, 5, 1, 19), time(9), time(21), "Europe/Moscow") == at(2030, 5, 2, 6)


def test_the_same_instant_maps_to_each_zones_own_opening():
    moment = at(2030, 5, 1, 0, 0)
    window = (time(10), time(11))
    assert send_time(moment, *window, "Asia/Tokyo") == at(2030, 5, 1, 1)  # UTC+9
    assert send_time(moment, *window, "Europe/London") == at(2030, 5, 1, 9)  # BST, UTC+1
    assert send_time(moment, *window, "America/New_York") == at(2030, 5, 1, 14)  # EDT, UTC-4
    assert send_time(moment, *window, "Asia/Kathmandu") == at(2030, 5, 1, 4, 15)  # UTC+5:45


def test_wrapping_window_opens_in_the_evening():
    # 12:00 UTC = 15:00 Moscow, outside 22:00-06:00: opens at 22:00 Moscow = 19:00 UTC.
    assert send_time(at(2030, 5, 1, 12), time(22), time(6), "Europe/Moscow") == at(2030, 5, 1, 19)
    # 01:00 UTC = 04:00 Moscow, inside the wrapped part after midnight: at once.
    assert send_time(at(2030, 5, 1, 1), time(22), time(6), "Europe/Moscow") == at(2030, 5, 1, 1)


def test_spring_forward_gap_opens_at_the_transition():
    # 2030-03-10, New York: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    moment = send_time(at(2030, 3, 10, 5), time(2, 30), time(4), "America/New_York")
    assert moment == at(2030, 3, 10, 7)  # 03:00 EDT, the first real instant in the window


def test_fall_back_repeated_hour_uses_the_first_occurrence():
    # 2030-11-03, New York: 01:30 happens twice (EDT, then EST); the first is 05:30 UTC.
    moment = send_time(at(2030, 11, 3, 4), time(1, 30), time(4), "America/New_York")
    assert moment == at(2030, 11, 3, 5, 30)


def test_window_opening_across_a_dst_change_keeps_local_time():
    # Berlin moves to CEST on 2030-03-31: 09:00 local is 08:00 UTC before, 07:00 UTC after.
    assert send_time(at(2030, 3, 30, 17), time(9), time(17), "Europe/Berlin") == at(2030, 3, 31, 7)


def test_no_window_before_the_end_means_no_message():
    assert send_time(at(2030, 5, 1, 12), time(9), time(10), "UTC", end_at=at(2030, 5, 2, 8)) is None
    assert send_time(at(2030, 5, 1, 12), None, None, "UTC", end_at=at(2030, 5, 1, 12)) is None


def test_an_opening_exactly_at_the_end_is_too_late():
    assert send_time(at(2030, 5, 1, 7), time(9), time(10), "UTC", end_at=at(2030, 5, 1, 9)) is None


# --- planning rows -------------------------------------------------------------------------
def open_run(campaign):
    campaign.status = CampaignStatus.SCHEDULED
    campaign.save()
    return CampaignRun.objects.create(campaign=campaign, number=1)


@pytest.mark.django_db
def test_planning_gives_each_client_its_zones_time_and_counts_the_skipped():
    start = timezone.now() + timedelta(days=1)
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    campaign = CampaignFactory(
        tag="zones",
        start_datetime=start,
        end_datetime=start + timedelta(hours=6),
        time_interval_start=time(9),
        time_interval_end=time(10),
    )
    tokyo = ClientFactory.create_batch(3, tag="zones", timezone="Asia/Tokyo")  # 09:00 = 00:00Z
    kolkata = ClientFactory.create_batch(2, tag="zones", timezone="Asia/Kolkata")  # 03:30Z
    ClientFactory.create_batch(4, tag="zones", timezone="America/New_York")  # 13:00Z, too late
    ClientFactory.create_batch(2, tag="other", timezone="Asia/Tokyo")  # not in the audience
    run = open_run(campaign)

    result = plan_run(run_id=run.id)

    assert (result.planned, result.skipped) == (5, 4)
    times = dict(run.messages.values_list("client_id", "planned_send_at"))
    assert {times[c.id] for c in tokyo} == {start}
    assert {times[c.id] for c in kolkata} == {start + timedelta(hours=3, minutes=30)}
    run.refresh_from_db()
    assert (run.status, run.planned_messages, run.skipped_clients) == (RunStatus.RUNNING, 5, 4)
    assert set(run.messages.values_list("status", flat=True)) == {MessageStatus.PENDING}
    assert all(m.next_attempt_at == m.planned_send_at for m in run.messages.all())


@pytest.mark.django_db
def test_planning_twice_creates_nothing_new():
    campaign = CampaignFactory(tag="twice")
    ClientFactory.create_batch(4, tag="twice")
    run = open_run(campaign)

    first = plan_run(run_id=run.id)
    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.SCHEDULED)  # a lost ack
    second = plan_run(run_id=run.id)
    third = plan_run(run_id=run.id)

    assert first.planned == 4
    assert second.planned == 0
    assert third.already_planned
    assert run.messages.count() == 4


@pytest.mark.django_db
def test_planning_is_a_fixed_number_of_queries_whatever_the_audience():
    def queries_for(clients, tag):
        ClientFactory.create_batch(clients, tag=tag, timezone="Europe/Moscow")
        ClientFactory.create_batch(clients, tag=tag, timezone="Asia/Tokyo")
        run = open_run(CampaignFactory(tag=tag))
        with CaptureQueriesContext(connection) as captured:
            plan_run(run_id=run.id)
        assert run.messages.count() == 2 * clients
        return len(captured)

    assert queries_for(3, "small") == queries_for(60, "large")


@pytest.mark.django_db
def test_planning_uses_the_audience_at_planning_time_without_deleted_clients():
    from api.services.clients import delete_client

    campaign = CampaignFactory(tag="later")
    kept, removed = ClientFactory.create_batch(2, tag="later")
    delete_client(client_id=removed.id)
    run = open_run(campaign)
    newcomer = ClientFactory(tag="later")

    plan_run(run_id=run.id)

    assert set(run.messages.values_list("client_id", flat=True)) == {kept.id, newcomer.id}


@pytest.mark.django_db
def test_skipped_counts_only_audience_clients_in_zones_that_never_open():
    from api.services.clients import delete_client

    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    campaign = CampaignFactory(
        tag="closed",
        start_datetime=start,
        end_datetime=start + timedelta(hours=6),
        time_interval_start=time(9),
        time_interval_end=time(10),
    )
    ClientFactory.create_batch(2, tag="closed", timezone="Asia/Tokyo")  # opens at 00:00Z
    ClientFactory(tag="closed", timezone="America/New_York")  # opens at 13:00Z: too late
    ClientFactory.create_batch(3, tag="other", timezone="America/New_York")  # not the audience
    ClientFactory.create_batch(2, tag="other", timezone="America/Chicago")  # nobody in audience
    gone = ClientFactory(tag="closed", timezone="America/New_York")
    delete_client(client_id=gone.id)
    run = open_run(campaign)

    result = plan_run(run_id=run.id)

    assert (result.planned, result.skipped) == (2, 1)


@pytest.mark.django_db
def test_a_zone_name_unknown_to_this_server_is_planned_as_utc():
    # Names are validated on write; one left in the table (an older tzdata) follows the
    # send-time rule: UTC, rather than failing the whole run or vanishing from it.
    campaign = CampaignFactory(tag="odd", time_interval_start=time(0), time_interval_end=time(23))
    utc_client = ClientFactory(tag="odd", timezone="UTC")
    odd = ClientFactory(tag="odd")
    Client.objects.filter(pk=odd.pk).update(timezone="Mars/Olympus_Mons")
    run = open_run(campaign)

    result = plan_run(run_id=run.id)

    assert (result.planned, result.skipped) == (2, 0)
    times = dict(run.messages.values_list("client_id", "planned_send_at"))
    assert times[odd.id] == times[utc_client.id]
