"""The per-minute sent counts behind the console's chart are kept by database triggers, exact
through every kind of write, on SQLite and Postgres (conftest also recounts after each test)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from api.campaign_activity import sent_series
from api.models import Message, MessageStatus, RunSentMinute
from api.services import sent_minutes
from api.tests.factories import CampaignRunFactory, ClientFactory, MessageFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, 30, tzinfo=UTC)


def minutes(run) -> dict[datetime, int]:
    return sent_minutes.sent_by_minute([run.pk])


def test_messages_sent_are_counted_in_the_minute_of_their_sent_at():
    run = CampaignRunFactory()
    pending = MessageFactory.create_batch(3, run=run)
    Message.objects.filter(pk__in=[m.pk for m in pending[:2]]).update(
        status=MessageStatus.SENT, sent_at=T0
    )
    Message.objects.filter(pk=pending[2].pk).update(
        status=MessageStatus.SENT, sent_at=T0 + timedelta(minutes=2)
    )

    assert minutes(run) == {
        T0.replace(second=0): 2,
        T0.replace(second=0) + timedelta(minutes=2): 1,
    }


def test_a_status_change_away_from_sent_a_moved_sent_at_and_a_delete_are_subtracted():
    run = CampaignRunFactory()
    sent = MessageFactory.create_batch(3, run=run, status=MessageStatus.SENT, planned_send_at=T0)
    minute = T0.replace(second=0)
    assert minutes(run) == {minute: 3}

    Message.objects.filter(pk=sent[0].pk).update(status=MessageStatus.FAILED)
    Message.objects.filter(pk=sent[1].pk).update(sent_at=T0 + timedelta(hours=1))
    Message.objects.filter(pk=sent[2].pk).delete()
    ClientFactory()  # unrelated writes change nothing

    assert minutes(run) == {minute + timedelta(hours=1): 1}
    assert not sent_minutes.recount_sent_minutes([run.pk])


def test_a_pending_insert_or_a_sent_row_without_sent_at_counts_nothing():
    run = CampaignRunFactory()
    MessageFactory(run=run)
    MessageFactory(run=run, status=MessageStatus.SENT, sent_at=None)

    assert minutes(run) == {}
    assert not RunSentMinute.objects.filter(run=run).exclude(sent=0).exists()


def test_a_manual_fix_that_bypasses_the_triggers_is_found_by_the_recount():
    run = CampaignRunFactory()
    MessageFactory(run=run, status=MessageStatus.SENT, planned_send_at=T0)
    RunSentMinute.objects.filter(run=run).update(sent=5)

    differences = sent_minutes.recount_sent_minutes([run.pk])

    assert differences == {run.pk: {T0.replace(second=0): (5, 1)}}
    RunSentMinute.objects.filter(run=run).update(sent=1)  # leave it right for conftest's check


def test_the_series_is_per_minute_for_a_short_campaign_with_gaps_filled():
    run = CampaignRunFactory()
    MessageFactory.create_batch(2, run=run, status=MessageStatus.SENT, planned_send_at=T0)
    MessageFactory(run=run, status=MessageStatus.SENT, planned_send_at=T0 + timedelta(minutes=3))

    series = sent_series([run.pk])

    assert series["bucket"] == "minute"
    assert [sent for _, sent in series["points"]] == [2, 0, 0, 1]


def test_the_series_is_per_hour_past_three_hours_and_per_day_past_two_weeks():
    run = CampaignRunFactory()
    MessageFactory(run=run, status=MessageStatus.SENT, planned_send_at=T0)
    later = MessageFactory(
        run=run, status=MessageStatus.SENT, planned_send_at=T0 + timedelta(hours=5)
    )
    assert sent_series([run.pk])["bucket"] == "hour"
    assert [sent for _, sent in sent_series([run.pk])["points"]] == [1, 0, 0, 0, 0, 1]

    Message.objects.filter(pk=later.pk).update(sent_at=T0 + timedelta(days=20))
    series = sent_series([run.pk])
    assert series["bucket"] == "day" and len(series["points"]) == 21


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_backends_write_their_own_shard_and_the_fold_keeps_the_sum():
    run = CampaignRunFactory()
    MessageFactory.create_batch(4, run=run, status=MessageStatus.SENT, planned_send_at=T0)
    shards = set(RunSentMinute.objects.filter(run=run).values_list("shard", flat=True))
    assert shards == {connection.connection.info.backend_pid}
    connection.close()  # this backend ends: its shard may be folded

    sent_minutes.fold_shards()

    assert list(RunSentMinute.objects.filter(run=run).values_list("shard", "sent")) == [(0, 4)]


def test_recount_stats_repairs_the_sent_per_minute_rows():
    from io import StringIO

    from django.core.management import call_command

    run = CampaignRunFactory()
    MessageFactory(run=run, status=MessageStatus.SENT, planned_send_at=T0)
    RunSentMinute.objects.filter(run=run).update(sent=5)
    out = StringIO()

    call_command("recount_stats", "--run", str(run.pk), stdout=out)

    assert f"run {run.pk} sent per minute: 2026-03-01 10:00: 5 -> 1" in out.getvalue()
    assert minutes(run) == {T0.replace(second=0): 1}
    assert not sent_minutes.recount_sent_minutes([run.pk])
