"""The import's fast path (one regex per plain CSV line) against the full path (csv module,
trimming, the client rules): the fast path may only accept what the full path accepts, with
the same values."""

from __future__ import annotations

import csv
import itertools
import random

import pytest

from api.domain.client_import import (
    check_import_row,
    client_row,
    client_values,
    fast_client,
    fast_line_pattern,
    parse_header,
)

PHONES = ["79000000001", "7900000000", "790000000012", "89000000001", "7900000000١", " 79000000002",
          "79000000003 ", "7900000000\u0663", "", "79000000004\n"]  # fmt: skip
CODES = ["900", "90", "9000", "９００", "90a", " 901", ""]
TAGS = ["", "vip", "v i p", " vip", "vip ", "\tvip", "тег", "t" * 64, "t" * 65, "a;b", "a,b",
        'a"b', "a\x00b", "\u00a0vip", "vip\u2003", "x" * 63 + " "]  # fmt: skip
ZONES = ["UTC", "Europe/Moscow", "europe/moscow", "Mars/Olympus", "", " UTC", "Etc/GMT+3",
         "posix/UTC", "localtime", "Factory", "America/Argentina/Buenos_Aires"]  # fmt: skip
OPTED = ["", "true", "FALSE", "Yes", "no", "1", "0", "maybe", " true"]


def full_path(line: str, columns: tuple[str, ...], delimiter: str):
    record = next(csv.reader([line], delimiter=delimiter), [])
    if len(record) != len(columns):
        return None
    values = client_row(dict(zip(columns, record, strict=True)))
    return None if check_import_row(values) else client_values(values)


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize(
    "columns",
    [
        ("phone_number", "mobile_operator_code", "tag", "timezone"),
        ("timezone", "tag", "phone_number", "mobile_operator_code", "opted_out"),
    ],
)
def test_fast_path_accepts_only_what_the_rules_accept_with_the_same_values(columns, delimiter):
    pattern = fast_line_pattern(parse_header(list(columns)), delimiter)
    values = {"phone_number": PHONES, "mobile_operator_code": CODES, "tag": TAGS,
              "timezone": ZONES, "opted_out": OPTED}  # fmt: skip
    rng = random.Random(13)
    combos = list(itertools.product(*(values[name] for name in columns)))
    lines = [delimiter.join(combo) for combo in rng.sample(combos, min(len(combos), 40_000))]
    lines += [line + "\r\n" for line in lines[:2000]] + [line + "\n" for line in lines[:2000]]
    accepted = 0
    for line in lines:
        fast = fast_client(pattern.match(line), opted_out="opted_out" in columns)
        if fast is not None:
            accepted += 1
            assert fast == full_path(line, columns, delimiter), line
    assert accepted > 20  # the fast path is taken (else this test proves nothing)


def test_full_path_accepts_what_the_fast_path_leaves_to_it():
    columns = ("phone_number", "mobile_operator_code", "tag", "timezone")
    pattern = fast_line_pattern(columns, ",")
    line = ' 79000000001 ,900,"vip, gold",UTC'
    assert fast_client(pattern.match(line), opted_out=False) is None
    assert full_path(line, columns, ",") == ("79000000001", "900", "vip, gold", "UTC", False)


def test_without_tag_or_timezone_columns_every_row_takes_the_full_path():
    assert fast_line_pattern(("phone_number", "mobile_operator_code"), ",") is None


def test_phone_set_agrees_with_a_python_set_through_growth():
    from api.services.client_import.chunks import PhoneSet

    rng = random.Random(5)
    phones = [70_000_000_000 + rng.randrange(200_000) for _ in range(300_000)]
    seen, reference = PhoneSet(), set()
    for phone in phones:
        assert seen.add(phone) == (phone not in reference)
        reference.add(phone)
    assert seen.size == len(reference) and len(seen.slots) > 2 * len(reference)
