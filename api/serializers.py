"""Validation and representation only; writes that matter go through api.services; the rules
themselves are api/domain's. (Just past ~250 lines: the strict JSON field types every
serializer shares stay beside them.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.db import models
from django.utils import timezone as django_timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .domain.audience import normalize_client_filter, parse_client_filter
from .domain.campaigns import (
    CAMPAIGN_FIELDS,
    CONSISTENCY_FIELDS,
    TEXT_MAX_LENGTH,
    check_campaign_consistency,
)
from .domain.clients import ensure_phone_free
from .domain.errors import refusals_as
from .models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    Client,
    Message,
    operator_code_validator,
    phone_validator,
    validate_timezone,
)
from .selectors import RUN_SUMMARY_FIELDS


class StrictCharField(serializers.CharField):
    """JSON strings only: DRF would turn 0 into "0" (a tag, a message text) where the schema
    says string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DigitsField(StrictCharField):
    """A string of digits, also taken as a JSON integer (scripts often send a phone number or
    operator code as a number); the schema says both."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and data >= 0:
            data = str(data)
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF would also read "yes", "0", 1 or "off", which the schema
    (boolean) does not allow and a typo can turn into the opposite of what was meant."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class ClientSerializer(StrictModelSerializer):
    phone_number = DigitsField(
        help_text="11 ASCII digits, 7XXXXXXXXXX (a string, or a JSON integer).",
        max_length=11,
        min_length=11,
        validators=[phone_validator],  # also puts the pattern in the schema
    )
    mobile_operator_code = DigitsField(
        max_length=3,
        validators=[operator_code_validator],
        help_text="3 ASCII digits (a string, or a JSON integer).",
    )
    timezone = StrictCharField(
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA name, e.g. Europe/Moscow.",
    )

    class Meta:
        model = Client
        fields = [
            "id",
            "phone_number",
            "mobile_operator_code",
            "tag",
            "timezone",
            "opted_out",
            "opted_out_at",
            "created_at",
            "updated_at",
        ]
        # Opt-out changes only through POST /clients/opt-out/ (api.services.opt_out).
        read_only_fields = ["id", "opted_out", "opted_out_at", "created_at", "updated_at"]

    def to_representation(self, client):
        # A client page is up to 1000 rows: each declared field read straight off the model,
        # datetimes in DRF's format (api/tests/test_client_representation.py compares the
        # result with DRF's own), as MessageSerializer does. DRF's per-field path was about
        # half the CPU of a page of 50, the most called list under load (bench/README.md,
        # "Load under dispatch").
        zone = django_timezone.get_current_timezone()
        return {name: _plain(getattr(client, name), zone) for name in self.Meta.fields}

    def validate_phone_number(self, value: str) -> str:
        # The format is phone_validator's (on the field, as in the model and the admin).
        with refusals_as(serializers.ValidationError, field_level=True):
            ensure_phone_free(value, client_id=getattr(self.instance, "pk", None))
        return value


class ClientFilterField(serializers.JSONField):
    """`{"phone_numbers": [...], "tags": [...], "operator_codes": [...]}`, or the seed's list."""

    def to_representation(self, value):
        return normalize_client_filter(value)

    def validate_empty_values(self, data):
        if data is None:  # `"client_filter": null` means no filter, like leaving it out
            return True, normalize_client_filter(None)
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        with refusals_as(serializers.ValidationError, field_level=True):
            return parse_client_filter(data)


_UTC_OFFSET = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)\s*\Z", re.IGNORECASE)
LOCAL_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?\Z")


@extend_schema_field(
    {
        "type": "string",
        "pattern": LOCAL_TIME_RE.pattern.replace("\\Z", "$"),
        "example": "10:00",
        "nullable": True,
    }
)
class LocalTimeField(serializers.TimeField):
    """A time of day in each client's own zone, HH:MM[:SS[.ffffff]]. One with a UTC offset
    ("10:00+03:00", "10:00Z") is refused, not silently read as 10:00 (DRF drops the offset),
    and so is any other spelling DRF would guess at ("1000")."""

    def to_internal_value(self, value):
        if isinstance(value, str) and _UTC_OFFSET.search(value.strip()):
            raise serializers.ValidationError(
                "A local time of day (HH:MM) without a UTC offset: the window applies in each"
                " client's own time zone."
            )
        if not isinstance(value, str) or not LOCAL_TIME_RE.match(value):
            raise serializers.ValidationError("A time of day as HH:MM (or HH:MM:SS).")
        return super().to_internal_value(value)


class CampaignSerializer(StrictModelSerializer):
    text_message = StrictCharField(max_length=TEXT_MAX_LENGTH, allow_blank=False)
    time_interval_start = LocalTimeField(
        required=False, allow_null=True, help_text="Daily window start, client's local time"
    )
    time_interval_end = LocalTimeField(
        required=False, allow_null=True, help_text="Daily window end, client's local time"
    )
    client_filter = ClientFilterField(required=False)
    auto_start = StrictBooleanField(
        write_only=True,
        default=True,
        help_text="Start sending when the campaign starts (default). false leaves a draft.",
    )

    class Meta:
        model = Campaign
        fields = ["id", *CAMPAIGN_FIELDS, "status", "auto_start", "created_at", "updated_at"]
        read_only_fields = ["id", "status", "created_at", "updated_at"]

    def validate(self, attrs):
        # A partial update is checked as the campaign it would make (the stored value of each
        # field left out); only an end being set must be in the future.
        merged = {
            name: attrs.get(name, getattr(self.instance, name, None)) for name in CONSISTENCY_FIELDS
        }
        with refusals_as(serializers.ValidationError):
            check_campaign_consistency(**merged, end_given="end_datetime" in attrs)
        return attrs


class StartSerializer(serializers.Serializer):
    force_resend = StrictBooleanField(
        default=False,
        help_text="Start a new run even if the campaign was started: unsent messages of the "
        "previous run are cancelled, every client of the audience is sent again.",
    )
    only = serializers.ChoiceField(
        choices=["failed"],
        required=False,
        allow_null=True,
        default=None,
        help_text='"failed": a new run for the clients whose message in the latest (ended) '
        "run failed or expired. Not with force_resend.",
    )


class StartedSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    run_number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CampaignStatus.choices)
    force_resend = serializers.BooleanField()
    only = serializers.CharField(allow_null=True)


class RunSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignRun
        fields = list(RUN_SUMMARY_FIELDS)  # what the stats' latest_run carries


class StatsSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CampaignStatus.choices)
    total_messages = serializers.IntegerField()
    sent_messages = serializers.IntegerField()
    pending_messages = serializers.IntegerField(help_text="pending + sending + paused")
    failed_messages = serializers.IntegerField()
    expired_messages = serializers.IntegerField()
    cancelled_messages = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    latest_run = RunSummarySerializer(allow_null=True)


# A message's own columns the API shows (the list view loads only these, plus the campaign).
MESSAGE_COLUMNS = (
    "id",
    "run",
    "client",
    "status",
    "planned_send_at",
    "next_attempt_at",
    "attempts",
    "last_error",
    "sent_at",
    "created_at",
)


class MessageSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="run.campaign_id", read_only=True)

    class Meta:
        model = Message
        fields = ["id", "campaign", *MESSAGE_COLUMNS[1:]]
        read_only_fields = fields

    def to_representation(self, message):
        # The message list serves pages of up to 1000 rows from a table of millions: build the
        # dict directly (same shape and formats as the declared fields) instead of running
        # DRF's per-field machinery, which cost ~0.2 ms per row (bench/bench_api.py).
        return {
            "id": message.id,
            "campaign": message.run.campaign_id,
            "run": message.run_id,
            "client": message.client_id,
            "status": message.status,
            "planned_send_at": _iso(message.planned_send_at),
            "next_attempt_at": _iso(message.next_attempt_at),
            "attempts": message.attempts,
            "last_error": message.last_error,
            "sent_at": _iso(message.sent_at),
            "created_at": _iso(message.created_at),
        }


def _plain(value, zone):
    return _iso_in(value, zone) if isinstance(value, datetime) else value


def _iso_in(moment, zone):
    """DRF's DateTimeField format in the current time zone (UTC by default: a Z suffix)."""
    if moment is None:
        return None
    text = moment.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _iso(moment):
    """DRF's DateTimeField format: ISO 8601 in UTC with a Z suffix."""
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
