"""JSON out through orjson: the same bytes DRF's JSONRenderer writes (compact, UTF-8, U+2028
and U+2029 escaped, the same encoder for anything that is not plain JSON data), several times
faster on big pages such as the all-campaign stats (bench/bench_stats.py)."""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

# Datetimes, Decimals, UUIDs, lazy strings... go to DRF's encoder, so their text is DRF's
# (orjson would write datetimes its own way). Non-str dict keys are written as JSON keys.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_encoder = JSONEncoder()


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if not self.compact or self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_encoder.default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # What orjson refuses (an int over 64 bits, a float NaN...) gets DRF's own answer.
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body
