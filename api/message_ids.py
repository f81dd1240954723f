"""Message ids, in one place: a run's message to a client is `run_id * STRIDE + client_id`.

Whoever computes it (planning in SQL, the API, a worker) gets the same id, so a message is found
by primary key without a lookup, and each run owns the id range [run * STRIDE, (run + 1) *
STRIDE): its Postgres partition's bounds (api/services/sql/partitions.py). Queries that name a
run write that range, so Postgres prunes every other run's partition at plan time.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

# Client ids must stay below it (they do: a 32-bit range of clients).
MESSAGE_ID_RUN_STRIDE = 2**32


def message_id(run_id: int, client_id: int) -> int:
    """The id of the run's message to the client (the same id whoever computes it)."""
    return run_id * MESSAGE_ID_RUN_STRIDE + client_id


def run_of(message_or_bound: int) -> int:
    """The run a message id (or a range's lower bound) belongs to."""
    return message_or_bound // MESSAGE_ID_RUN_STRIDE


def client_of(message: int) -> int:
    return message % MESSAGE_ID_RUN_STRIDE


def run_message_ids(run_id: int) -> tuple[int, int]:
    """[low, high): the id range holding every message of the run (its partition's bounds)."""
    return run_id * MESSAGE_ID_RUN_STRIDE, (run_id + 1) * MESSAGE_ID_RUN_STRIDE


def runs_message_ids(run_ids: Iterable[int]) -> list[tuple[int, int]]:
    """run_message_ids of each run, in run order, once each."""
    return [run_message_ids(int(run_id)) for run_id in sorted(set(run_ids))]


def of_runs(run_ids: Iterable[int]) -> Q:
    """A filter on the messages of these runs, written as id ranges so that Postgres prunes
    the partitions of every other run at plan time. Matches nothing for no runs."""
    condition = Q(pk__in=[])
    for low, high in runs_message_ids(run_ids):
        condition |= Q(pk__gte=low, pk__lt=high)
    return condition


def run_ranges_sql(run_ids: Iterable[int]) -> str:
    """`(id >= a AND id < b) OR ...` over the runs' id ranges, as literals (ints only), for raw
    SQL: Postgres prunes every other run's partition when it plans the statement."""
    ranges = [f"(id >= {low} AND id < {high})" for low, high in runs_message_ids(run_ids)]
    return "(" + " OR ".join(ranges) + ")"
