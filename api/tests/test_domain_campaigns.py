"""The campaign rules called directly (api/domain/campaigns.py): each refusal names its field,
in the order the API reports them."""

from datetime import UTC, datetime, time, timedelta

import pytest

from api.domain.campaigns import (
    TEXT_MAX_LENGTH,
    check_daily_window,
    check_period,
    check_text_message,
    validate_campaign,
)
from api.domain.errors import InvalidInput

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def refusal(check, **arguments) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        check(**arguments)
    return refused.value


def campaign(**overrides):
    values = {
        "text_message": "Hello",
        "start_datetime": NOW,
        "end_datetime": NOW + timedelta(days=1),
        "tag": "vip",
        "now": NOW,
    }
    return {**values, **overrides}


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "blank"), ("   ", "blank"), ("x" * (TEXT_MAX_LENGTH + 1), "1600"), (0, "string")],
)
def test_a_text_that_is_blank_too_long_or_not_text_is_refused_naming_text_message(text, says):
    error = refusal(check_text_message, value=text)

    assert error.field == "text_message" and says in error.message
    check_text_message("x" * TEXT_MAX_LENGTH)


def test_a_period_needs_both_ends():
    assert refusal(check_period, start_datetime=None, end_datetime=NOW).field == "start_datetime"
    assert refusal(check_period, start_datetime=NOW, end_datetime=None).field == "end_datetime"


@pytest.mark.parametrize("end", [NOW, NOW - timedelta(seconds=1)])
def test_an_end_not_after_the_start_is_refused_naming_end_datetime(end):
    error = refusal(check_period, start_datetime=NOW, end_datetime=end, now=NOW)

    assert (error.field, error.message) == ("end_datetime", "Must be later than start_datetime.")


def test_an_end_being_set_must_be_in_the_future_but_a_kept_one_may_have_passed():
    past = {"start_datetime": NOW - timedelta(days=2), "end_datetime": NOW - timedelta(days=1)}

    error = refusal(check_period, **past, now=NOW)
    check_period(**past, end_given=False, now=NOW)

    assert (error.field, error.message) == ("end_datetime", "Must be in the future.")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(time(10), None, "time_interval_end"), (None, time(19), "time_interval_start")],
)
def test_a_daily_window_needs_both_ends_or_neither(start, end, field):
    error = refusal(check_daily_window, start=start, end=end)

    assert error.field == field
    assert error.message == "Give both ends of the daily window, or neither."


def test_an_empty_daily_window_is_refused_and_one_across_midnight_is_not():
    error = refusal(check_daily_window, start=time(10), end=time(10))
    check_daily_window(time(22), time(6))
    check_daily_window(None, None)

    assert error.field == "time_interval_end"


def test_a_campaign_keeping_every_rule_gets_its_filter_normalized():
    client_filter = validate_campaign(**campaign(client_filter=["900", "gold", "gold"]))

    assert client_filter == {"phone_numbers": [], "tags": ["gold"], "operator_codes": ["900"]}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"text_message": ""}, "text_message"),
        ({"tag": "t" * 65}, "tag"),
        ({"client_filter": {"phones": []}}, "client_filter"),
        ({"end_datetime": NOW - timedelta(hours=1)}, "end_datetime"),
        ({"time_interval_start": time(10)}, "time_interval_end"),
        ({"tag": "", "client_filter": {"operator_codes": ["900"]}}, "tag"),
    ],
)
def test_a_campaign_breaking_a_rule_is_refused_naming_the_field(overrides, field):
    assert refusal(validate_campaign, **campaign(**overrides)).field == field


def test_only_changed_fields_are_checked_alone_and_the_rules_between_fields_always():
    stored = campaign(
        text_message="x" * (TEXT_MAX_LENGTH + 1),  # an old row, written before the limit
        start_datetime=NOW - timedelta(days=2),
        end_datetime=NOW - timedelta(days=1),
    )

    validate_campaign(**stored, changed={"tag"})
    error = refusal(validate_campaign, **{**stored, "tag": ""}, changed={"tag"})

    assert error.field == "tag"  # no audience left
