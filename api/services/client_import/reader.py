"""Rows out of an input, streamed: a CSV byte stream (UTF-8 with or without BOM, `,` or `;`)
or a JSON array already parsed. Each row comes out as (line, values, problems): values trimmed
and defaulted (api/domain/client_import.client_row), problems the row's own refusals."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from api.domain.client_import import (
    COLUMNS,
    FileRefused,
    check_import_row,
    client_row,
    parse_header,
)

NOT_UTF8 = "The line is not valid UTF-8 text."
Row = tuple[int, dict | None, list[tuple[str, str]]]


class _DecodedLines:
    """The stream's lines decoded one by one: a byte that is not UTF-8 refuses its own row,
    not the whole file (`undecodable` holds those line numbers)."""

    def __init__(self, stream: BinaryIO):
        self.lines = iter(stream)
        self.number = 0
        self.undecodable: set[int] = set()

    def first(self) -> str:
        raw = next(self.lines, b"").removeprefix(codecs.BOM_UTF8)
        self.number = 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FileRefused("The file is not UTF-8 text (its header is not).") from None

    def __iter__(self) -> Iterator[str]:
        for raw in self.lines:
            self.number += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.undecodable.add(self.number)
                yield raw.decode("utf-8", "replace")


def csv_rows(stream: BinaryIO) -> tuple[tuple[str, ...], Iterator[Row]]:
    """The file's columns (FileRefused if the header is unusable) and its data rows."""
    lines = _DecodedLines(stream)
    header = lines.first()
    delimiter = ";" if header.count(";") > header.count(",") else ","
    columns = parse_header(next(csv.reader([header], delimiter=delimiter), []))
    return columns, _data_rows(lines, columns, delimiter)


def _data_rows(lines: _DecodedLines, columns: tuple[str, ...], delimiter: str) -> Iterator[Row]:
    reader = csv.reader(lines, delimiter=delimiter)
    width = len(columns)
    previous = 1
    for record in reader:
        line = reader.line_num + 1  # the header was read before the reader started
        first_line, previous = previous + 1, line
        if not record:
            continue  # a blank line
        if lines.undecodable and any(n in lines.undecodable for n in range(first_line, line + 1)):
            yield line, None, [("row", NOT_UTF8)]
        elif len(record) != width:
            yield line, None, [("row", f"Expected {width} fields, found {len(record)}.")]
        else:
            values = client_row(dict(zip(columns, record, strict=True)))
            yield line, values, check_import_row(values)


def json_rows(items: Iterable) -> Iterator[Row]:
    """A JSON array's objects, numbered from 1; a phone or operator code may be a JSON integer
    and opted_out a JSON boolean, as the API's own fields take them."""
    for line, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield line, None, [("row", "Must be a JSON object.")]
            continue
        unknown = sorted(set(item) - set(COLUMNS))
        if unknown:
            yield line, None, [(unknown[0], "Unknown field.")]
            continue
        raw = {name: _json_text(value) for name, value in item.items()}
        wrong = [name for name, value in raw.items() if value is None]
        if wrong:
            yield line, None, [(wrong[0], "Not a valid string.")]
            continue
        missing = [name for name in COLUMNS[:2] if name not in raw]
        if missing:
            yield line, None, [(missing[0], "This field is required.")]
            continue
        values = client_row(raw)
        yield line, values, check_import_row(values)


def _json_text(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value >= 0:
        return str(value)
    return value if isinstance(value, str) else None
