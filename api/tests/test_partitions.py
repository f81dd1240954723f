"""Derived message ids and, on Postgres, the message table partitioned by run."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from api.message_ids import message_id, run_message_ids
from api.models import Message, MessageStatus, RunStatus
from api.services import dispatch
from api.services.dispatch.claims import claim_statement
from api.services.planning import plan_run
from api.services.sql import backend, partitions
from api.tests.factories import (
    CampaignFactory,
    CampaignRunFactory,
    ClientFactory,
    MessageFactory,
)


def planned_run(clients: int = 3):
    tag = f"t{ClientFactory._meta.next_sequence()}"
    for _ in range(clients):
        ClientFactory(tag=tag)
    campaign = CampaignFactory(tag=tag, status="scheduled")
    run = CampaignRunFactory(campaign=campaign, status=RunStatus.SCHEDULED, planned_at=None)
    result = plan_run(run_id=run.id)
    assert result.planned == clients
    return run


@pytest.mark.django_db
def test_message_ids_are_run_and_client():
    run = planned_run()
    rows = list(Message.objects.filter(run=run).values_list("id", "run_id", "client_id"))
    assert len(rows) == 3
    for pk, run_id, client_id in rows:
        assert pk == message_id(run_id, client_id) == run_id * 2**32 + client_id
        low, high = run_message_ids(run_id)
        assert low <= pk < high


@pytest.mark.django_db
def test_the_database_refuses_a_second_message_to_a_client_in_a_run():
    message = MessageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(run=message.run, client=message.client)
    assert Message.objects.filter(run=message.run).count() == 1


@pytest.mark.django_db
def test_the_database_refuses_an_id_that_is_not_run_and_client():
    message = MessageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.filter(pk=message.pk).update(client_id=message.client_id + 1)


@pytest.mark.django_db
def test_planning_twice_adds_nothing():
    run = planned_run()
    Message.objects.filter(run=run).update(status=MessageStatus.SENT)
    run.status = RunStatus.SCHEDULED  # as if the plan task ran again on a stale read
    run.save(update_fields=["status"])

    again = plan_run(run_id=run.id)

    assert again.planned == 0
    assert Message.objects.filter(run=run).count() == 3


# --- Postgres: one partition per run --------------------------------------------------------
def partition_indexes(run_id: int) -> dict[str, str | None]:
    """The partition's indexes and the parent index each one is attached to."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, parent.relname FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " LEFT JOIN pg_inherits h ON h.inhrelid = i.indexrelid"
            " LEFT JOIN pg_class parent ON parent.oid = h.inhparent"
            " WHERE i.indrelid = %s::regclass",
            [partitions.partition_name(run_id)],
        )
        return dict(cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.django_db
def test_planning_attaches_a_partition_with_exactly_the_parent_indexes():
    run = planned_run()

    indexes = partition_indexes(run.id)

    # Each index built in bulk was adopted by the parent's: none duplicated by ATTACH.
    assert sorted(indexes.values()) == ["api_message_pkey", "message_due_idx", "message_lease_idx"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = %s",
            [partitions.partition_name(run.id)],
        )
        bound = cursor.fetchone()[0]
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
            [partitions.partition_name(run.id)],
        )
        checks = {row[0] for row in cursor.fetchall()}
    low, high = run_message_ids(run.id)
    assert bound == f"FOR VALUES FROM ('{low}') TO ('{high}')"
    assert "message_id_is_run_and_client" in checks
    assert not any(name.endswith("_range") for name in checks)  # dropped once attached


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_failed_plan_leaves_no_partition_behind(monkeypatch):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip", status="scheduled")
    run = CampaignRunFactory(campaign=campaign, status=RunStatus.SCHEDULED, planned_at=None)

    def broken_attach(*args, **kwargs):
        raise RuntimeError("attach failed")

    real_create = partitions.create_run_partition

    def create_then_fail(run_id, *, load=None):
        real_create(run_id, load=load)
        broken_attach()

    monkeypatch.setattr(partitions, "create_run_partition", create_then_fail)
    with pytest.raises(RuntimeError):
        plan_run(run_id=run.id)

    assert not partitions.partition_exists(run.id)
    run.refresh_from_db()
    assert run.status == RunStatus.SCHEDULED
    monkeypatch.undo()
    assert plan_run(run_id=run.id).planned == 1


def explain(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.django_db
def test_claims_and_probes_read_only_running_runs_partitions():
    running = planned_run(clients=2)
    paused = planned_run(clients=2)
    finished = planned_run(clients=2)
    paused.status = RunStatus.PAUSED
    paused.save(update_fields=["status"])
    finished.status = RunStatus.FINISHED
    finished.save(update_fields=["status"])
    now = timezone.now() + timedelta(days=30)

    run_ids = dispatch.sending_run_ids()
    plan = explain(*claim_statement(run_ids, now=now, lease_until=now, token=1, limit=10))

    assert run_ids == [running.id]
    assert partitions.partition_name(running.id) in plan
    assert partitions.partition_name(paused.id) not in plan
    assert partitions.partition_name(finished.id) not in plan


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_message_lookup_by_id_reads_one_partition():
    first, second = planned_run(clients=1), planned_run(clients=1)
    message = Message.objects.filter(run=second).get()

    plan = Message.objects.filter(pk__any_of=[message.pk]).explain()

    assert partitions.partition_name(second.id) in plan
    assert partitions.partition_name(first.id) not in plan


def old_schema_rows(executor, target) -> tuple[list, list]:
    """Two runs and three clients written through the models as they were at `target` (the
    current models may have columns that schema lacks)."""
    apps = executor.loader.project_state(target).apps
    start = timezone.now() + timedelta(hours=1)
    campaign = apps.get_model("api", "Campaign").objects.create(
        text_message="old", start_datetime=start, end_datetime=start + timedelta(days=1)
    )
    run_model, client_model = apps.get_model("api", "CampaignRun"), apps.get_model("api", "Client")
    runs = [run_model.objects.create(campaign=campaign, number=number) for number in (1, 2)]
    clients = [
        client_model.objects.create(phone_number=f"7900000000{index}", mobile_operator_code="900")
        for index in range(3)
    ]
    return runs, clients


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migration_moves_existing_messages_into_one_partition_per_run():
    """0007 on a database that already has messages (0006's plain table), and back."""
    executor = MigrationExecutor(connection)
    before, after = [("api", "0006_message_derived_id")], [("api", "0007_message_partitioned")]
    try:
        executor.migrate(before)
        (first, second), clients = old_schema_rows(executor, before)
        with connection.cursor() as cursor:
            for run in (first, second):
                for client in clients:
                    cursor.execute(
                        "INSERT INTO api_message (id, run_id, client_id, status, planned_send_at,"
                        " next_attempt_at, attempts, last_error, created_at)"
                        " VALUES (%s, %s, %s, 'pending', now(), now(), 0, '', now())",
                        [message_id(run.id, client.id), run.id, client.id],
                    )
        executor = MigrationExecutor(connection)
        executor.migrate(after)

        assert partitions.partition_exists(first.id) and partitions.partition_exists(second.id)
        assert sorted(partition_indexes(first.id).values()) == [
            "api_message_pkey",
            "message_due_idx",
            "message_lease_idx",
        ]
        assert Message.objects.filter(run_id=first.id).count() == 3
        assert Message.objects.filter(run_id=second.id).count() == 3

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'api_message'")
            assert cursor.fetchone()[0] == "r"  # a plain table again
            cursor.execute("SELECT count(*) FROM api_message")
            assert cursor.fetchone()[0] == 6
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("api"))


@pytest.mark.django_db(transaction=True)
def test_messages_of_the_sequence_id_era_get_derived_ids_on_upgrade():
    """From 0005 (ids from a sequence, unique (run, client)) to the latest schema, on either
    backend: every existing message keeps its run, client and status under its derived id."""
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("api", "0005_message_open_run_idx")])
        runs, clients = old_schema_rows(executor, [("api", "0005_message_open_run_idx")])
        now = timezone.now()
        with connection.cursor() as cursor:
            for run in runs:
                for client in clients:
                    cursor.execute(
                        "INSERT INTO api_message (run_id, client_id, status, planned_send_at,"
                        " next_attempt_at, attempts, last_error, created_at)"
                        " VALUES (%s, %s, 'sent', %s, %s, 1, '', %s)",
                        [run.id, client.id, now, now, now],
                    )
            cursor.execute("SELECT max(id) FROM api_message")
            assert cursor.fetchone()[0] < 2**32  # sequence ids

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("api"))

        rows = list(Message.objects.values_list("id", "run_id", "client_id", "status"))
        assert len(rows) == 6
        assert all(pk == message_id(run_id, client_id) for pk, run_id, client_id, _ in rows)
        assert {status for *_, status in rows} == {"sent"}
        if backend().partitioned:
            assert all(partitions.partition_exists(run.id) for run in runs)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("api"))
