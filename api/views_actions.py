"""The operator actions beside the CRUD (issue 12): opt-out, test send, audience preview.
Thin: parse, call one service or selector, shape the response."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .preview import audience_preview
from .serializers_actions import (
    OptOutResultSerializer,
    OptOutSerializer,
    PreviewSerializer,
    TestSendRequestSerializer,
    TestSendSerializer,
)
from .services import campaign_test_sends, opt_out

ERROR = OpenApiResponse(description="JSON error naming the offending field")


def _valid(serializer_class, request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ClientActions:
    @extend_schema(
        request=OptOutSerializer,
        responses={200: OptOutResultSerializer, 400: ERROR},
        summary="Opt clients out by phone number (an inbound STOP); says which were found",
    )
    @action(detail=False, methods=["post"], url_path="opt-out", url_name="opt-out")
    def opt_out(self, request):
        data = _valid(OptOutSerializer, request)
        result = opt_out.set_opted_out(phone_numbers=data["phones"], opted_out=data["opted_out"])
        body = {"found": result.found, "not_found": result.not_found, "changed": result.changed}
        return Response(OptOutResultSerializer(body).data)


class CampaignActions:
    @extend_schema(
        request=TestSendRequestSerializer,
        responses={200: TestSendSerializer(many=True), 400: ERROR},
        summary="Send the campaign's text now to a few existing clients (kept out of the stats)",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        data = _valid(TestSendRequestSerializer, request)
        campaign = self.get_object()
        sends = campaign_test_sends.send_test(campaign_id=campaign.pk, phone_numbers=data["phones"])
        return Response(TestSendSerializer(sends, many=True).data, status=status.HTTP_200_OK)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "tz", str, description="IANA zone of the local histogram (default: TIME_ZONE)."
            )
        ],
        responses={200: PreviewSerializer, 400: ERROR},
        summary="Audience preview: counts by zone and operator, skipped, opted out, and when "
        "the messages would go out (per hour); writes nothing",
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def preview(self, request, pk=None):
        campaign = self.get_object()
        tz_name = request.query_params.get("tz", settings.TIME_ZONE)
        return Response(audience_preview(campaign, tz_name))
