"""The orjson renderer writes what DRF's JSONRenderer writes."""

import datetime as dt
import decimal
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer

from api.renderers import JSONRenderer

SAMPLES = [
    {"id": 1, "text": "Привет, мир", "ok": True, "nothing": None, "ratio": 0.25},
    [{"nested": {"deeper": [1, 2, {"x": "y"}]}}],
    {"when": dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)},
    {"when": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=3)))},
    {"day": dt.date(2030, 1, 2), "at": dt.time(10, 30), "span": dt.timedelta(seconds=90)},
    {"money": decimal.Decimal("12.50"), "key": uuid.UUID(int=7)},
    {"detail": ErrorDetail("This field is required.", code="required")},
    {"lazy": gettext_lazy("This field is required.")},
    {"line separators": "a\u2028b\u2029c"},
    {7: "an int key"},
    {"big": 2**70},
    "plain string",
    [],
]


@pytest.mark.parametrize("data", SAMPLES, ids=range(len(SAMPLES)))
def test_same_bytes_as_drf(data):
    assert JSONRenderer().render(data) == DrfJSONRenderer().render(data)


def test_indent_requested_is_honoured():
    body = JSONRenderer().render({"a": [1]}, "application/json; indent=2", {})
    assert body == DrfJSONRenderer().render({"a": [1]}, "application/json; indent=2", {})
    assert b"\n" in body


def test_none_is_empty_body():
    assert JSONRenderer().render(None) == b""


@pytest.mark.django_db
def test_api_answers_through_it(api):
    response = api.get("/api/campaigns/stats/")
    assert response.status_code == 200
    assert response.accepted_renderer.__class__ is JSONRenderer
