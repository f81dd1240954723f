"""The API's JSON body parser: DRF's, plus two refusals that used to end elsewhere.

- A body over DATA_UPLOAD_MAX_MEMORY_SIZE (`API_MAX_BODY_BYTES`, default 1 MiB) is a 413 JSON
  answer. DRF reads the body as a stream, so Django's own limit never applied to the API: any
  size was read into memory.
- Deep nesting is a 400 like any bad JSON: json.loads recurses once per level, and a body of
  thousands of "[" reached the view as a 500 (RecursionError).
"""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise BodyTooLarge()
            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
