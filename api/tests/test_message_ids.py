"""Message-id arithmetic: one formula wherever it is computed (Python, planning's SQL)."""

import pytest

from api.message_ids import (
    MESSAGE_ID_RUN_STRIDE,
    client_of,
    message_id,
    of_runs,
    run_message_ids,
    run_of,
    run_ranges_sql,
    runs_message_ids,
)
from api.models import Message
from api.tests.test_dispatch import make_campaign


def test_an_id_names_its_run_and_client():
    for run, client in [(1, 0), (1, 1), (7, MESSAGE_ID_RUN_STRIDE - 1), (10**6, 123_456)]:
        assert (run_of(message_id(run, client)), client_of(message_id(run, client))) == (
            run,
            client,
        )


def test_run_ranges_are_contiguous_disjoint_and_ordered():
    assert run_message_ids(3) == (3 * 2**32, 4 * 2**32)
    assert runs_message_ids([5, 3, 5]) == [run_message_ids(3), run_message_ids(5)]
    low, high = run_message_ids(3)
    assert message_id(3, 0) == low and message_id(3, MESSAGE_ID_RUN_STRIDE - 1) == high - 1
    assert run_message_ids(4)[0] == high


def test_range_sql_is_literal_ints_only():
    assert run_ranges_sql([2]) == f"((id >= {2 * 2**32} AND id < {3 * 2**32}))"
    assert run_ranges_sql(["1"]).count("OR") == 0  # a numeric string becomes an int literal
    with pytest.raises(ValueError):
        run_ranges_sql(["1; DROP TABLE api_message"])


@pytest.mark.django_db
def test_planning_sql_and_python_agree():
    campaign, run = make_campaign(clients=4)
    pairs = list(Message.objects.filter(of_runs([run.id])).values_list("id", "client_id"))
    assert len(pairs) == 4
    assert all(pk == message_id(run.id, client) for pk, client in pairs)
    assert not Message.objects.filter(of_runs([])).exists()
    assert not Message.objects.filter(of_runs([run.id + 1])).exists()
