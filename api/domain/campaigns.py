"""Campaign rules: a text, a period that ends after it starts (and in the future when it is
set), a daily window given whole and not empty, and an audience. The API's serializer, the
model's clean() (the admin) and the services call these; refusals name the field to fix."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time

from django.utils import timezone

from .audience import ClientFilter, check_has_audience, parse_client_filter
from .clients import check_tag
from .errors import InvalidInput

TEXT_MAX_LENGTH = 1600  # ten concatenated SMS parts
# What the rules between fields read (check_campaign_consistency's arguments), and every
# field a campaign's rules cover.
CONSISTENCY_FIELDS = (
    "start_datetime",
    "end_datetime",
    "time_interval_start",
    "time_interval_end",
    "tag",
    "client_filter",
)
CAMPAIGN_FIELDS = ("text_message", *CONSISTENCY_FIELDS)


def check_text_message(value: str) -> None:
    if not isinstance(value, str):
        raise InvalidInput("Not a valid string.", field="text_message")
    if not value.strip():
        raise InvalidInput("This field may not be blank.", field="text_message")
    if len(value) > TEXT_MAX_LENGTH:
        raise InvalidInput(
            f"Ensure this field has no more than {TEXT_MAX_LENGTH} characters.",
            field="text_message",
        )


def check_period(
    *,
    start_datetime: datetime | None,
    end_datetime: datetime | None,
    end_given: bool = True,
    now: datetime | None = None,
) -> None:
    """Start before end; an end being set must be in the future (a text edit of a campaign
    whose end has passed keeps that end)."""
    if start_datetime is None:
        raise InvalidInput("This field is required.", field="start_datetime")
    if end_datetime is None:
        raise InvalidInput("This field is required.", field="end_datetime")
    if start_datetime >= end_datetime:
        raise InvalidInput("Must be later than start_datetime.", field="end_datetime")
    if end_given and end_datetime <= (now or timezone.now()):
        raise InvalidInput("Must be in the future.", field="end_datetime")


def check_daily_window(start: time | None, end: time | None) -> None:
    """Both ends or neither; start after end wraps midnight, start equal to end is empty."""
    if (start is None) != (end is None):
        missing = "time_interval_end" if end is None else "time_interval_start"
        raise InvalidInput("Give both ends of the daily window, or neither.", field=missing)
    if start is not None and start == end:
        raise InvalidInput(
            "The daily window is empty (start equals end).", field="time_interval_end"
        )


def check_campaign_consistency(
    *,
    start_datetime: datetime | None,
    end_datetime: datetime | None,
    time_interval_start: time | None,
    time_interval_end: time | None,
    tag: str,
    client_filter,
    end_given: bool = True,
    now: datetime | None = None,
) -> None:
    """The rules between fields, on the campaign as it would be saved, in the order the API
    reports them: the period, the daily window, the audience."""
    check_period(
        start_datetime=start_datetime, end_datetime=end_datetime, end_given=end_given, now=now
    )
    check_daily_window(time_interval_start, time_interval_end)
    check_has_audience(tag=tag, client_filter=client_filter)


def validate_campaign(
    *,
    text_message: str,
    start_datetime: datetime | None,
    end_datetime: datetime | None,
    time_interval_start: time | None = None,
    time_interval_end: time | None = None,
    tag: str = "",
    client_filter=None,
    changed: Collection[str] = CAMPAIGN_FIELDS,
    now: datetime | None = None,
) -> ClientFilter:
    """Every campaign rule; returns client_filter, normalized when it is in `changed`. Only
    the fields in `changed` are checked on their own (a stored one was checked when written);
    the rules between fields always apply."""
    if "text_message" in changed:
        check_text_message(text_message)
    if "tag" in changed:
        check_tag(tag)
    if "client_filter" in changed:
        client_filter = parse_client_filter(client_filter)
    check_campaign_consistency(
        start_datetime=start_datetime,
        end_datetime=end_datetime,
        time_interval_start=time_interval_start,
        time_interval_end=time_interval_end,
        tag=tag,
        client_filter=client_filter,
        end_given="end_datetime" in changed,
        now=now,
    )
    return client_filter


def validate_campaign_row(campaign, *, changed: Collection[str] = CAMPAIGN_FIELDS) -> None:
    """validate_campaign on an object carrying the campaign's fields (a row about to be saved);
    its client_filter is set to the normalized one."""
    values = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}
    campaign.client_filter = validate_campaign(**values, changed=changed)
