"""Request and response shapes of the operator actions: opt-out, test send, audience preview.
(Validation of the phone lists is the domain's: api.domain.clients.check_phone_list.)"""

from __future__ import annotations

from rest_framework import serializers

from .domain.clients import MAX_PHONES_PER_REQUEST
from .serializers import StrictBooleanField
from .services.campaign_test_sends import MAX_TEST_PHONES


class PhoneListField(serializers.ListField):
    """A JSON list; its items are checked by the service (masked in its errors)."""

    child = serializers.JSONField()


class OptOutSerializer(serializers.Serializer):
    phones = PhoneListField(
        help_text=f"1 to {MAX_PHONES_PER_REQUEST} phone numbers, 7XXXXXXXXXX.",
    )
    opted_out = StrictBooleanField(default=True, help_text="false opts the clients back in.")


class OptOutResultSerializer(serializers.Serializer):
    found = serializers.ListField(child=serializers.CharField())
    not_found = serializers.ListField(child=serializers.CharField())
    changed = serializers.IntegerField(help_text="Clients whose flag this call changed.")


class TestSendRequestSerializer(serializers.Serializer):
    phones = PhoneListField(
        help_text=f"1 to {MAX_TEST_PHONES} phone numbers of existing clients.",
    )


class TestSendSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Also the gateway's message id (< 2**32).")
    client = serializers.IntegerField(source="client_id")
    phone_number = serializers.CharField(source="client.phone_number")
    outcome = serializers.CharField(help_text="sent, retry (not delivered) or failed")
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class HourCountSerializer(serializers.Serializer):
    hour = serializers.CharField()
    messages = serializers.IntegerField()


class ZoneCountSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    clients = serializers.IntegerField()
    planned_send_at = serializers.CharField(allow_null=True)


class OperatorCountSerializer(serializers.Serializer):
    operator_code = serializers.CharField()
    clients = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    """api.preview.audience_preview's dict (documented there)."""

    campaign_id = serializers.IntegerField()
    generated_at = serializers.CharField()
    timezone = serializers.CharField()
    total = serializers.IntegerField()
    planned = serializers.IntegerField()
    skipped_no_window = serializers.IntegerField()
    opted_out = serializers.IntegerField()
    by_timezone = ZoneCountSerializer(many=True)
    by_operator_code = OperatorCountSerializer(many=True)
    histogram_utc = HourCountSerializer(many=True)
    histogram_local = HourCountSerializer(many=True)
