"""The audience rules called directly (api/domain/audience.py): the client_filter forms and
limits, and who a tag and a filter target."""

import pytest
from django.db.models import Q

from api.domain.audience import (
    MAX_FILTER_ITEMS,
    MAX_FILTER_PHONES,
    NO_AUDIENCE_MESSAGE,
    audience_conditions,
    audience_filter,
    audience_tags,
    check_has_audience,
    normalize_client_filter,
    parse_client_filter,
)
from api.domain.errors import InvalidInput

EMPTY = {"phone_numbers": [], "tags": [], "operator_codes": []}


def test_the_seed_list_form_is_sorted_into_phones_codes_and_tags_without_repeats():
    parsed = parse_client_filter(["79000000001", "900", "gold", "79000000001", " ", 901])

    assert parsed == {
        "phone_numbers": ["79000000001"],
        "tags": ["gold"],
        "operator_codes": ["900", "901"],
    }


def test_the_object_form_is_trimmed_and_a_null_list_is_empty():
    parsed = parse_client_filter({"tags": [" gold ", "gold"], "operator_codes": None})

    assert parsed == {"phone_numbers": [], "tags": ["gold"], "operator_codes": []}


@pytest.mark.parametrize("raw", [None, "", [], {}])
def test_no_filter_is_the_empty_filter(raw):
    assert parse_client_filter(raw) == EMPTY


def test_parsing_a_parsed_filter_gives_it_back():
    parsed = parse_client_filter({"phone_numbers": ["79000000001"], "tags": ["a"]})

    assert parse_client_filter(parsed) == parsed


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("vip", "object or a list"),
        (42, "object or a list"),
        ({"phones": ["79000000001"]}, "Unknown keys: phones"),
        ({"tags": "vip"}, "tags must be a list"),
        ([True], "Items must be strings"),
        ([{"tag": "vip"}], "Items must be strings"),
        (["٧٩٠٠٠٠٠٠٠٠١"], "ASCII digits"),
        ({"phone_numbers": ["7900"]}, "1 value(s) are not 7XXXXXXXXXX"),
        ({"operator_codes": ["90"]}, "operator_codes must be 3-digit strings"),
        ({"tags": ["t" * 65]}, "tags are at most 64 characters"),
        ({"phone_numbers": [f"7{n:010d}" for n in range(MAX_FILTER_PHONES + 1)]}, "At most"),
        ({"tags": [f"t{n}" for n in range(MAX_FILTER_ITEMS + 1)]}, "At most"),
    ],
)
def test_a_filter_breaking_a_rule_is_refused_naming_client_filter(raw, says):
    with pytest.raises(InvalidInput) as refused:
        parse_client_filter(raw)

    assert refused.value.field == "client_filter"
    assert says in refused.value.message


def test_a_stored_filter_is_read_leniently():
    assert normalize_client_filter({"tags": ["a", " "], "phone_numbers": None}) == {
        "phone_numbers": [],
        "tags": ["a"],
        "operator_codes": [],
    }


def test_the_campaign_tag_comes_first_then_the_filters_without_repeats():
    assert audience_tags(tag="vip", client_filter={"tags": ["gold", "vip"]}) == ["vip", "gold"]


def test_phone_numbers_are_the_audience_and_tags_and_codes_narrow_it():
    conditions = audience_conditions(
        tag="vip", client_filter={"phone_numbers": ["79000000001"], "operator_codes": ["900"]}
    )

    assert conditions == [
        ("phone_number", ["79000000001"]),
        ("tag", ["vip"]),
        ("mobile_operator_code", ["900"]),
    ]


def test_without_phones_the_tags_are_the_audience_narrowed_by_codes():
    conditions = audience_conditions(tag="vip", client_filter=["gold", "900"])

    assert conditions == [("tag", ["vip", "gold"]), ("mobile_operator_code", ["900"])]
    assert audience_conditions(tag="", client_filter={"operator_codes": ["900"]}) is None
    assert audience_filter(tag="", client_filter={"operator_codes": ["900"]}) is None


def test_the_orm_filter_leaves_out_deleted_and_opted_out_clients():
    condition = audience_filter(tag="vip", client_filter=None)

    assert condition == Q(deleted_at=None, opted_out=False) & Q(tag__any_of=["vip"])


@pytest.mark.parametrize(
    ("tag", "client_filter"),
    [("vip", None), ("", {"tags": ["gold"]}), ("", ["79000000001"])],
)
def test_a_tag_a_filter_tag_or_a_phone_is_an_audience(tag, client_filter):
    check_has_audience(tag=tag, client_filter=client_filter)


@pytest.mark.parametrize("client_filter", [None, {}, {"operator_codes": ["900"]}])
def test_no_tag_and_no_phone_is_no_audience_naming_tag(client_filter):
    with pytest.raises(InvalidInput) as refused:
        check_has_audience(tag="", client_filter=client_filter)

    assert refused.value.field == "tag"
    assert refused.value.message == NO_AUDIENCE_MESSAGE
