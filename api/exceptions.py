"""Domain errors raised by services, and the API's JSON error handler."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request the service refuses; `field` names what to fix."""

    http_status = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field: str = "non_field_errors"):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(ServiceError):
    http_status = status.HTTP_400_BAD_REQUEST


class Conflict(ServiceError):
    """The campaign is not in a state that allows this action."""

    http_status = status.HTTP_409_CONFLICT


def json_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's own check, where it reads the body
        from .parsers import BodyTooLarge

        exc = BodyTooLarge()
    if isinstance(exc, ServiceError):
        return Response({exc.field: [exc.message]}, status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        exc = DrfValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, ProtectedError):
        return Response(
            {"detail": "It has message history and cannot be deleted; cancel it instead."},
            status=status.HTTP_409_CONFLICT,
        )
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, ParseError):
        response.data = {"detail": "Malformed JSON body.", "error": str(exc.detail)}
    return response
