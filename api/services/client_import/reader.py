"""Rows out of an input, streamed: a CSV byte stream (UTF-8 with or without BOM, `,` or `;`)
or a JSON array already parsed. Each row comes out as (line, client, problems): client the
values to write (api/domain/client_import.client_values) or None, problems its refusals.

A plain CSV line is taken by the domain's fast path (one regex); any other line is parsed by
the csv module, which may read on for a quoted field spanning lines."""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from api.domain.client_import import (
    COLUMNS,
    FileRefused,
    check_import_row,
    client_row,
    client_values,
    fast_client,
    fast_line_pattern,
    parse_header,
)

NOT_UTF8 = "The line is not valid UTF-8 text."
Row = tuple[int, tuple | None, list[tuple[str, str]]]


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
    fast = fast_line_pattern(columns, delimiter)
    opted_out = "opted_out" in columns
    source = iter(lines)
    for text in source:
        first_line = lines.number
        if fast is not None and not lines.undecodable:
            client = fast_client(fast.match(text), opted_out=opted_out)
            if client is not None:
                yield first_line, client, []
                continue
        reader = csv.reader(itertools.chain([text], source), delimiter=delimiter)
        try:
            record = next(reader)
        except csv.Error as error:
            yield lines.number, None, [("row", f"Not valid CSV: {error}.")]
            continue
        if record:  # else a blank line
            yield _full_path_row(lines, first_line, record, columns)


def _full_path_row(lines: _DecodedLines, first_line: int, record: list[str], columns) -> Row:
    line = lines.number  # a quoted field may have spanned lines: the row's last line
    if lines.undecodable and any(n in lines.undecodable for n in range(first_line, line + 1)):
        return line, None, [("row", NOT_UTF8)]
    if len(record) != len(columns):
        return line, None, [("row", f"Expected {len(columns)} fields, found {len(record)}.")]
    values = client_row(dict(zip(columns, record, strict=True)))
    problems = check_import_row(values)
    return line, None if problems else client_values(values), problems


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
        problems = check_import_row(values)
        yield line, None if problems else client_values(values), problems


def _json_text(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value >= 0:
        return str(value)
    return value if isinstance(value, str) else None
