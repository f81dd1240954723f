"""The audience's SQL WHERE (api/services/sql/where.py) and the ORM filter (campaign_audience)
come from the same domain conditions: for every filter form they select the same clients."""

import pytest
from django.db import connection

from api.models import Campaign
from api.selectors import campaign_audience
from api.services.opt_out import set_opted_out
from api.services.sql.where import audience_where
from api.tests.factories import ClientFactory

FORMS = [
    ("vip", None),
    ("vip", {}),
    ("", {"tags": ["gold"]}),
    ("vip", {"tags": ["gold"], "operator_codes": ["901"]}),
    ("", {"phone_numbers": ["79000000001", "79000000004"]}),
    ("vip", {"phone_numbers": ["79000000001", "79000000004"]}),
    ("", {"phone_numbers": ["79000000002"], "operator_codes": ["900"]}),
    ("", ["79000000001", "gold", "901"]),  # the seed's list form
    ("", ["gold"]),
    ("", {"operator_codes": ["900"]}),  # no audience
    ("nobody", None),
    ("", None),
]


@pytest.fixture
def clients(db):
    rows = [
        ("79000000001", "900", "vip"),
        ("79000000002", "900", "gold"),
        ("79000000003", "901", "gold"),
        ("79000000004", "901", "vip"),
        ("79000000005", "900", "vip"),  # opted out
        ("79000000006", "901", "gold"),  # deleted
    ]
    made = [
        ClientFactory(phone_number=phone, mobile_operator_code=code, tag=tag)
        for phone, code, tag in rows
    ]
    set_opted_out(phone_numbers=["79000000005"])
    made[5].deleted_at = made[5].created_at
    made[5].save()
    return made


def sql_ids(campaign, **kwargs) -> set[int]:
    where = audience_where(campaign, alias="audience", **kwargs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT audience.id FROM api_client AS audience WHERE {where.sql}", where.params
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize(("tag", "client_filter"), FORMS)
def test_sql_and_orm_select_the_same_clients(clients, tag, client_filter):
    campaign = Campaign(tag=tag, client_filter=client_filter)

    orm = set(campaign_audience(campaign).values_list("id", flat=True))

    assert sql_ids(campaign) == orm
    assert clients[4].pk not in orm and clients[5].pk not in orm


def test_the_opted_out_part_of_an_audience_is_its_own_selection(clients):
    campaign = Campaign(tag="vip")

    assert sql_ids(campaign, opted_out=True) == {clients[4].pk}
    assert sql_ids(campaign, opted_out=None) == {c.pk for c in clients if c.tag == "vip"}


def test_a_big_phone_list_is_one_parameter(clients):
    phones = [f"7900{i:07d}" for i in range(10_000)]
    where = audience_where(Campaign(tag="", client_filter={"phone_numbers": phones}))

    assert len(where.params) == 2  # opted_out and the list
    assert sql_ids(Campaign(tag="", client_filter={"phone_numbers": phones})) == {
        clients[0].pk,
        clients[1].pk,
        clients[2].pk,
        clients[3].pk,
    }
