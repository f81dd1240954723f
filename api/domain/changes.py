"""UNCHANGED: the default of an update's argument, for a field that keeps its value (None cannot
say so: it is a value, e.g. a campaign without a daily window)."""

from __future__ import annotations

import enum


class Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


def given(**values) -> dict:
    """The arguments that are not UNCHANGED: the fields an update sets."""
    return {name: value for name, value in values.items() if value is not UNCHANGED}
