"""The API's JSON error handler: domain errors (api/domain/errors.py) and Django's become
4xx answers naming the field."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api.domain.errors import CampaignStateConflict, DomainError
from api.domain.errors import NotFound as DomainNotFound

logger = logging.getLogger(__name__)


# Domain errors -> HTTP status (the most specific class listed first wins).
DOMAIN_STATUS = (
    (CampaignStateConflict, status.HTTP_409_CONFLICT),
    (DomainError, status.HTTP_400_BAD_REQUEST),
)


def domain_status(exc: DomainError) -> int:
    return next(code for kind, code in DOMAIN_STATUS if isinstance(exc, kind))


def json_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's own check, where it reads the body
        from .parsers import BodyTooLarge

        exc = BodyTooLarge()
    if isinstance(exc, DomainError):
        return Response({exc.field: [exc.message]}, status=domain_status(exc))
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


@contextmanager
def url_object_gone_as_404(field: str):
    """A service that finds the URL's object gone (`field`: "client", "campaign") answers 404,
    as the view's own lookup would have: it was deleted by a concurrent request between that
    lookup and the service's locked read. A gone object named in a body stays a 400."""
    try:
        yield
    except DomainNotFound as exc:
        if exc.field != field:
            raise
        raise NotFound(exc.message) from None
