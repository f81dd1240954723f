"""Bulk client import over HTTP (issue 13): a CSV upload, a JSON array, and the import's
status. Thin: the input's checks and the import itself are api/services/client_import's."""

from __future__ import annotations

import orjson
from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.generics import RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from .domain.client_import import OUTCOMES, report_truncated
from .models import ClientImport
from .services import client_import

ERROR = OpenApiResponse(description="JSON error naming the offending field")
BULK_ITEM = (
    "A client: phone_number, mobile_operator_code (required), tag, timezone, opted_out. "
    "An item that is not a valid client is reported by its position, the others imported."
)


class ClientImportSerializer(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()
    report_truncated = serializers.SerializerMethodField()

    class Meta:
        model = ClientImport
        fields = [
            "id", "status", "mode", "source", "file_name", "rows_total", "rows_done",
            "committed_line", "counts", "report", "report_truncated", "error",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip

    def get_counts(self, job) -> dict:
        return {outcome: job.counts.get(outcome, 0) for outcome in OUTCOMES}

    def get_report_truncated(self, job) -> bool:
        return report_truncated(job.counts, job.report)


def _answer(job: ClientImport, *, stored: bool) -> Response:
    if stored:  # the worker starts once the input is committed
        transaction.on_commit(lambda: enqueue_import(job.pk))
    code = status.HTTP_202_ACCEPTED if stored else status.HTTP_200_OK
    return Response(ClientImportSerializer(job).data, status=code)


def enqueue_import(import_id: int) -> None:
    from .tasks import import_clients

    import_clients.delay(import_id)


class ClientCsvImportView(APIView):
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"},
            "mode": {"type": "string", "enum": ["upsert", "create-only"]},
        }}},  # fmt: skip
        responses={200: ClientImportSerializer, 202: ClientImportSerializer, 400: ERROR},
        summary="Import clients from a CSV file (upsert by phone); large files run in a worker",
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["No file was submitted (multipart field `file`)."]})
        job, stored = client_import.accept_csv_upload(
            stream=upload.open("rb"),
            size=upload.size,
            mode=request.data.get("mode"),
            file_name=upload.name,
        )
        return _answer(job, stored=stored)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


class BulkJSONParser(parsers.JSONParser):
    """JSON up to IMPORT_BULK_MAX_BYTES (the API's own limit is for one object)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.IMPORT_BULK_MAX_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ParseError(str(error)) from None


class ClientBulkImportView(APIView):
    parser_classes = [BulkJSONParser]

    @extend_schema(
        # Items of any shape: one that is not a valid client object is a refused row in the
        # report (200), not a refusal of the whole array.
        request={"application/json": {"type": "array", "items": {"description": BULK_ITEM}}},
        responses={200: ClientImportSerializer, 202: ClientImportSerializer, 400: ERROR},
        summary="Import a JSON array of clients (upsert by phone; `?mode=create-only`)",
    )
    def post(self, request):
        items = request.data
        if not isinstance(items, list):
            raise ValidationError({"clients": ["The body must be a JSON array of clients."]})
        mode = client_import.check_mode(request.query_params.get("mode"))
        if len(items) <= settings.IMPORT_SYNC_MAX_ROWS:
            return _answer(client_import.import_json_now(items=items, mode=mode), stored=False)
        return _answer(client_import.store_json(items=items, mode=mode), stored=True)


class ClientImportDetailView(RetrieveAPIView):
    queryset = ClientImport.objects.all()
    serializer_class = ClientImportSerializer
