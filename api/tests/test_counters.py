"""Stats come from per-run counters kept by the database on every status change.

Every test of the suite ends with a recount that compares the counters with the messages
(conftest.pytest_runtest_call); these tests cover what that check cannot: that stats never
count messages, that repairs work, and that Postgres's per-backend shards fold back.
"""

import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import Message, MessageStatus, RunStatusCount
from api.services import counters, dispatch, reconcile
from api.tests.factories import CampaignFactory, ClientFactory
from api.tests.test_dispatch import make_campaign, start_and_plan


@pytest.mark.django_db
def test_stats_read_the_counters_never_the_messages(api):
    campaign, run = make_campaign(clients=4)
    Message.objects.filter(pk=run.messages.first().pk).update(status=MessageStatus.SENT)

    with CaptureQueriesContext(connection) as queries:
        one = api.get(f"/api/campaigns/{campaign.id}/stats/")
        every = api.get("/api/campaigns/stats/")

    assert one.status_code == every.status_code == 200
    assert (one.json()["total_messages"], one.json()["sent_messages"]) == (4, 1)
    assert one.json()["pending_messages"] == 3
    assert every.json()[0]["by_status"]["sent"] == 1
    assert not [q["sql"] for q in queries if "api_message" in q["sql"]]


@pytest.mark.django_db
def test_counters_follow_a_whole_delivery(gateway, http_provider):
    campaign, run = make_campaign(clients=6)
    assert counters.run_counts([run.id])[run.id]["pending"] == 6
    gateway.script(503, count=2)

    dispatch.dispatch_due_messages(provider=http_provider, time_budget=10)

    counts = counters.run_counts([run.id])[run.id]
    assert (counts["sent"], counts["pending"], counts["sending"]) == (4, 2, 0)


@pytest.mark.django_db
def test_recount_stats_reports_and_repairs_a_run():
    campaign, run = make_campaign(clients=3)
    other = start_and_plan(CampaignFactory(tag="promo"))
    RunStatusCount.objects.filter(run=run).update(count=99)  # a manual data "fix" gone wrong

    out = call_command_output("recount_stats", "--dry-run")
    assert f"run {run.id}: pending: 99 -> 3" in out and "would be repaired" in out
    assert counters.recount_runs([run.id]) != {}  # nothing was repaired

    out = call_command_output("recount_stats", "--run", str(run.id))
    assert "1 run(s) repaired" in out
    assert counters.recount_runs() == {}
    assert counters.run_counts([run.id, other.id])[run.id]["pending"] == 3
    assert call_command_output("recount_stats") == "Counters match the messages.\n"


def call_command_output(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_counters_follow_client_deletion_and_cancel(api):
    from api.services.clients import delete_client

    campaign, run = make_campaign(clients=3)
    delete_client(client_id=run.messages.first().client_id)
    assert counters.run_counts([run.id])[run.id]["cancelled"] == 1

    assert api.post(f"/api/campaigns/{campaign.id}/cancel/").status_code == 200
    reconcile.reconcile_run_messages(run_id=run.id)  # the task queued after the commit
    stats = api.get(f"/api/campaigns/{campaign.id}/stats/").json()
    assert stats["cancelled_messages"] == 3 and stats["total_messages"] == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_shards_of_ended_backends_fold_into_one_row(gateway, http_provider):
    ClientFactory.create_batch(60, tag="shards")
    run = start_and_plan(CampaignFactory(tag="shards"))

    def worker():
        try:
            dispatch.dispatch_due_messages(provider=http_provider, time_budget=10, batch_size=7)
        finally:
            connection.close()  # the backend ends: its shard may be folded

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    before = counters.run_counts([run.id])[run.id]
    assert RunStatusCount.objects.filter(run=run).exclude(shard=0).exists()

    assert counters.fold_shards() > 0

    assert counters.run_counts([run.id])[run.id] == before
    assert before["sent"] == 60
    assert set(RunStatusCount.objects.filter(run=run).values_list("shard", flat=True)) <= {
        0,
        connection.connection.info.backend_pid,
    }


def test_admin_run_and_campaign_lists_show_progress_from_the_counters(admin_client):
    from api.tests.factories import CampaignRunFactory as Runs
    from api.tests.factories import MessageFactory as Messages

    run = Runs()
    Messages.create_batch(2, run=run, status="sent")
    Messages(run=run, status="expired")
    Messages(run=run, status="pending")

    runs = admin_client.get("/admin/api/campaignrun/").content.decode()
    assert "2 sent, 1 not sent (failed, expired, cancelled) of 4: 75 % done" in runs
    campaigns = admin_client.get("/admin/api/campaign/").content.decode()  # the console's bar
    assert "2 sent, 1 not sent of 4 · 75 % done" in campaigns
    assert 'data-total="4" data-sent="2"' in campaigns
