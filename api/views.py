"""Thin HTTP layer: validate, call one service or selector, shape the response. (Just past ~250
lines: one viewset per resource, each action a few lines, read best side by side.)"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from . import selectors
from .exceptions import url_object_gone_as_404
from .filters import MAX_BIGINT, ClientFilter, MessageFilter
from .models import Campaign, Client, Message
from .serializers import (
    MESSAGE_COLUMNS,
    CampaignSerializer,
    ClientSerializer,
    MessageSerializer,
    StartedSerializer,
    StartSerializer,
    StatsSerializer,
)
from .services import campaigns as campaign_services
from .services import clients as client_services
from .services.resend import ONLY_FAILED
from .views_actions import CampaignActions, ClientActions

ERROR = OpenApiResponse(description="JSON error naming the offending field")
CONFLICT = OpenApiResponse(description="The campaign's state does not allow this action")

CLIENT_EXAMPLE = OpenApiExample(
    "Client",
    value={
        "phone_number": "79000000001",
        "mobile_operator_code": "900",
        "tag": "vip",
        "timezone": "Europe/Moscow",
    },
    request_only=True,
)
CAMPAIGN_EXAMPLE = OpenApiExample(
    "Campaign for VIP clients, 10:00-19:00 their time",
    value={
        "text_message": "20% off for VIP clients",
        "start_datetime": "2030-01-01T00:00:00Z",
        "end_datetime": "2030-01-03T00:00:00Z",
        "time_interval_start": "10:00",
        "time_interval_end": "19:00",
        "tag": "vip",
        "client_filter": {"operator_codes": ["900"]},
    },
    request_only=True,
)


class SingleValuedQuery:
    """A query parameter given twice is a 400 naming it: DRF and django-filter would silently
    use one of the values (every parameter of this API takes one value)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        repeated = sorted(
            k for k in request.query_params if len(request.query_params.getlist(k)) > 1
        )
        if repeated:
            raise ValidationError({key: ["Given more than once."] for key in repeated})


class ApiRootView(SingleValuedQuery, APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Links to the API resources")
    def get(self, request):
        return Response(
            {
                name: reverse(f"{name[:-1]}-list", request=request)
                for name in ("clients", "campaigns", "messages")
            }
        )


class ApiNotFoundView(APIView):
    """Any other path under /api/: a JSON 404 (after authentication), like every API error."""

    schema = None  # not an endpoint

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise NotFound("No such API endpoint.")


@extend_schema_view(
    create=extend_schema(examples=[CLIENT_EXAMPLE], responses={201: ClientSerializer, 400: ERROR}),
    destroy=extend_schema(
        summary="Delete a client (soft: message history stays, unsent messages are cancelled)"
    ),
)
class ClientViewSet(ClientActions, SingleValuedQuery, viewsets.ModelViewSet):
    queryset = Client.objects.all()
    serializer_class = ClientSerializer
    filterset_class = ClientFilter
    lookup_value_regex = r"\d+"

    def perform_create(self, serializer):
        serializer.instance = client_services.create_client(**serializer.validated_data)

    def perform_update(self, serializer):
        with url_object_gone_as_404("client"):
            serializer.instance = client_services.update_client(
                client_id=serializer.instance.pk, **serializer.validated_data
            )

    def perform_destroy(self, instance):
        with url_object_gone_as_404("client"):
            client_services.delete_client(client_id=instance.pk)


_SPELLED = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _start_options(request) -> dict:
    """From the body, or the query string (no booleans there: the usual spellings). A query
    value that is none of them is a 400 even when the body also says it."""
    data = request.data
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    if "force_resend" in request.query_params:
        raw = request.query_params["force_resend"].strip().lower()
        if raw not in _SPELLED:
            raise ValidationError({"force_resend": ["Must be true or false."]})
        if "force_resend" not in data:
            data = {**data, "force_resend": _SPELLED[raw]}
    start = StartSerializer(data=data)
    start.is_valid(raise_exception=True)
    return start.validated_data


@extend_schema_view(
    create=extend_schema(
        examples=[CAMPAIGN_EXAMPLE],
        responses={201: CampaignSerializer, 400: ERROR},
        summary="Create a campaign; it is scheduled at once unless auto_start is false",
    ),
    update=extend_schema(responses={200: CampaignSerializer, 400: ERROR, 409: CONFLICT}),
    partial_update=extend_schema(responses={200: CampaignSerializer, 400: ERROR, 409: CONFLICT}),
    destroy=extend_schema(
        responses={204: None, 409: CONFLICT},
        summary="Delete a campaign that never ran (one with history: cancel it instead)",
    ),
)
class CampaignViewSet(CampaignActions, SingleValuedQuery, viewsets.ModelViewSet):
    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    lookup_value_regex = r"\d+"
    filterset_fields = ["status", "tag"]

    def perform_create(self, serializer):
        serializer.instance = campaign_services.create_campaign(**serializer.validated_data)

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        changes.pop("auto_start", None)  # a create-only switch
        with url_object_gone_as_404("campaign"):
            serializer.instance = campaign_services.update_campaign(
                campaign_id=serializer.instance.pk, **changes
            )

    def perform_destroy(self, instance):
        with url_object_gone_as_404("campaign"):
            campaign_services.delete_campaign(campaign_id=instance.pk)

    @extend_schema(
        request=StartSerializer,
        parameters=[OpenApiParameter("force_resend", bool, description="Same as the body field.")],
        responses={202: StartedSerializer, 400: ERROR, 409: CONFLICT},
        examples=[
            OpenApiExample("Force a re-send", value={"force_resend": True}),
            OpenApiExample("Resend to failed", value={"only": "failed"}),
        ],
        summary="Start the campaign (a new run); 409 if started unless force_resend;"
        ' {"only": "failed"} re-sends the latest run\'s failures',
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        options = _start_options(request)
        force_resend = options["force_resend"]
        campaign = self.get_object()
        run = campaign_services.start_campaign(
            campaign_id=campaign.pk,
            force_resend=force_resend,
            only_failed=options["only"] == ONLY_FAILED,
        )
        body = {
            "campaign_id": campaign.pk,
            "run_id": run.pk,
            "run_number": run.number,
            "status": Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk),
            "force_resend": force_resend,
            "only": options["only"],
        }
        return Response(StartedSerializer(body).data, status=status.HTTP_202_ACCEPTED)

    def _transition(self, service):
        with url_object_gone_as_404("campaign"):
            campaign = service(campaign_id=self.get_object().pk)
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._transition(campaign_services.pause_campaign)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: ERROR, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._transition(campaign_services.resume_campaign)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._transition(campaign_services.cancel_campaign)

    @extend_schema(responses={200: StatsSerializer}, summary="Message counts of one campaign")
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        # The selector already returns the response's shape (StatsSerializer documents it);
        # no get_object(): the stats query itself finds the campaign or answers None.
        campaign_id = int(pk)
        stats = selectors.campaign_stats(campaign_id) if campaign_id < MAX_BIGINT else None
        if stats is None:
            raise NotFound("No Campaign matches the given query.")
        return Response(stats)

    @extend_schema(
        responses={200: StatsSerializer(many=True)},
        summary="Message counts of every campaign (one grouped query)",
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="stats",
        url_name="all-stats",
        pagination_class=None,  # a plain list, and the schema says so
        filter_backends=[],
    )
    def all_stats(self, request):
        return Response(selectors.all_campaign_stats())


class MessageViewSet(
    SingleValuedQuery, viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin
):
    queryset = Message.objects.select_related("run").only("run__campaign_id", *MESSAGE_COLUMNS)
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    lookup_value_regex = r"\d+"
