"""Settled runs' message partitions are merged into blocks (Postgres)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api.models import Message, MessageStatus, RunStatus
from api.services.compaction import blocks_to_merge, compact_settled_runs
from api.services.planning import plan_run
from api.services.sql import partitions
from api.tests.factories import CampaignFactory, CampaignRunFactory, ClientFactory

STRIDE = 2**32
on_postgres = [pytest.mark.postgres, pytest.mark.django_db]


def postgres(test):
    for mark in reversed(on_postgres):
        test = mark(test)
    return test


def planned_run(status=RunStatus.FINISHED, *, clients=2, **fields):
    tag = f"c{ClientFactory._meta.next_sequence()}"
    for _ in range(clients):
        ClientFactory(tag=tag)
    run = CampaignRunFactory(
        campaign=CampaignFactory(tag=tag, status="scheduled"),
        status=RunStatus.SCHEDULED,
        planned_at=None,
    )
    assert plan_run(run_id=run.id).planned == clients
    Message.objects.filter(run=run).update(status=MessageStatus.SENT)
    run.status = status
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    return run


def names() -> list[str]:
    return [part.name for part in partitions.partitions()]


def merged_into_one_block(merged: list[str], runs) -> bool:
    """The merge made one block holding every one of `runs`, ending with the last of them
    (it may also hold empty partitions that earlier transactional tests left behind)."""
    if len(merged) != 1:
        return False
    (block,) = [part for part in partitions.partitions() if part.name == merged[0]]
    return block.first_run <= runs[0].id and block.last_run == runs[-1].id


def snapshot() -> list[tuple]:
    return list(Message.objects.order_by("id").values_list("id", "run_id", "client_id", "status"))


@postgres
def test_settled_runs_share_one_partition_and_keep_every_message(api):
    settled = [planned_run() for _ in range(4)]
    running = planned_run(RunStatus.RUNNING)
    before = snapshot()

    merged = compact_settled_runs(min_partitions=2)

    assert merged_into_one_block(merged, settled)
    assert names()[-2:] == [merged[0], partitions.partition_name(running.id)]
    assert snapshot() == before
    with connection.cursor() as cursor:  # its indexes were adopted by the parent's
        cursor.execute(
            "SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid"
            " WHERE c.relkind = 'i' AND c.relname LIKE %s",
            [merged[0] + "%"],
        )
        assert cursor.fetchone()[0] == 3
    # The API still finds a merged run's messages by run and by id.
    response = api.get(f"/api/messages/?run={settled[1].id}")
    assert sorted(m["id"] for m in response.json()["results"]) == sorted(
        Message.objects.filter(run=settled[1]).values_list("id", flat=True)
    )
    some = Message.objects.filter(run=settled[2]).first()
    assert api.get(f"/api/messages/{some.id}/").json()["run"] == settled[2].id


@postgres
def test_runs_after_the_first_unsettled_one_wait():
    early = [planned_run() for _ in range(3)]
    paused = planned_run(RunStatus.PAUSED)
    later = [planned_run() for _ in range(3)]
    recently_cancelled = planned_run(RunStatus.CANCELLED, finished_at=timezone.now())

    merged = compact_settled_runs(min_partitions=2)

    assert merged_into_one_block(merged, early)
    assert partitions.partition_name(paused.id) in names()
    assert all(partitions.partition_name(run.id) in names() for run in later)
    assert partitions.partition_name(recently_cancelled.id) in names()


@postgres
def test_long_cancelled_runs_are_settled_and_compaction_is_idempotent():
    old = timezone.now() - timedelta(days=30)
    runs = [planned_run(RunStatus.CANCELLED, finished_at=old) for _ in range(3)]

    first = compact_settled_runs(min_partitions=2)
    second = compact_settled_runs(min_partitions=2)

    assert merged_into_one_block(first, runs) and second == []


@postgres
def test_a_new_run_plans_into_its_own_partition_after_a_compaction():
    [planned_run() for _ in range(3)]
    compact_settled_runs(min_partitions=2)

    new = planned_run(RunStatus.RUNNING)

    assert partitions.partition_name(new.id) in names()
    assert Message.objects.filter(run=new).count() == 2


def part(run, rows=10, runs=1):
    return partitions.Partition(f"p{run}", run * STRIDE, (run + runs) * STRIDE, rows)


@pytest.mark.parametrize(
    ("parts", "boundary", "expected"),
    [
        # a big run and an existing block cut the groups; a lone small run stays
        ([part(1), part(2), part(3, rows=500_000), part(4), part(5)], 99, [[1, 2], [4, 5]]),
        ([part(1), part(2, runs=5), part(7), part(8)], 99, [[7, 8]]),
        ([part(1), part(2, rows=300_000), part(3)], 99, []),  # too few together to merge
        ([part(1), part(3), part(4, rows=-1)], 99, [[1, 3, 4]]),  # gaps; -1 = never counted
        ([part(1), part(2), part(9), part(10)], 9, [[1, 2]]),  # 9 and 10 are not settled
        ([part(n, rows=900_000) for n in range(1, 5)], 99, []),  # big runs stay alone
        (
            [part(n, rows=150_000) for n in range(1, 30)],
            99,
            [list(range(1, 14)), list(range(14, 27)), [27, 28, 29]],  # <= 2M rows a block
        ),
    ],
)
def test_which_partitions_are_merged(parts, boundary, expected):
    blocks = blocks_to_merge(parts, boundary, min_partitions=2)

    assert [[p.first_run for p in block] for block in blocks] == expected


@postgres
@pytest.mark.django_db(transaction=True)
def test_a_busy_table_postpones_the_merge_instead_of_stalling_traffic(monkeypatch):
    from django.db import connections

    monkeypatch.setattr(partitions, "MERGE_LOCK_TIMEOUT", 0.2)
    runs = [planned_run() for _ in range(3)]
    before = names()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:  # a long report reading the messages
            cursor.execute("BEGIN")
            cursor.execute("SELECT count(*) FROM api_message")
            assert compact_settled_runs(min_partitions=2) == []
            cursor.execute("ROLLBACK")
    finally:
        other.close()

    assert names() == before
    assert merged_into_one_block(compact_settled_runs(min_partitions=2), runs)
