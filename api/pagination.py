"""Keyset pagination on the primary key, strict about what it is given."""

from __future__ import annotations

import binascii
from base64 import b64decode
from urllib import parse

from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination

_CURSOR_KEYS = {"o", "r", "p"}
_MAX_OFFSET = 1000  # DRF's offset_cutoff


def _invalid(name: str, message: str) -> ValidationError:
    return ValidationError({name: [message]})


class IdCursorPagination(CursorPagination):
    """No COUNT(*), constant cost at any depth. A cursor or page_size that is not one this API
    wrote is a 400 naming it: DRF answers a garbled cursor with a 404 or, when the position is
    not a number, a 500, and ignores a bad page_size."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise _invalid(
                self.page_size_query_param,
                f"A whole number from 1 to {self.max_page_size} (larger is served as"
                f" {self.max_page_size}).",
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=True)
        except (UnicodeError, ValueError, binascii.Error):
            raise _invalid(self.cursor_query_param, "Not a cursor this API returned.") from None
        if not tokens or set(tokens) - _CURSOR_KEYS or any(len(v) != 1 for v in tokens.values()):
            raise _invalid(self.cursor_query_param, "Not a cursor this API returned.")
        offset, reverse = tokens.get("o", ["0"])[0], tokens.get("r", ["0"])[0]
        position = tokens.get("p", [None])[0]
        if not (offset.isascii() and offset.isdigit()) or int(offset) > _MAX_OFFSET:
            raise _invalid(self.cursor_query_param, "Not a cursor this API returned.")
        if reverse not in ("0", "1"):
            raise _invalid(self.cursor_query_param, "Not a cursor this API returned.")
        if position is not None and not _is_int(position):
            raise _invalid(self.cursor_query_param, "Not a cursor this API returned.")
        return Cursor(offset=int(offset), reverse=reverse == "1", position=position)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {**build_basic_type(OpenApiTypes.INT), "minimum": 1}
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; more than"
                    f" {self.max_page_size} is served as {self.max_page_size})."
                )
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "Opaque: only a value from a `next` or `previous` link of this API; any other"
                    " is a 400."
                )
        return parameters


def _is_int(text: str) -> bool:
    digits = text[1:] if text[:1] == "-" else text
    return digits.isascii() and digits.isdigit() and len(digits) <= 20
