"""Client rules: the phone number, the operator code, the tag and the time zone, and one phone
number per active client. The model's validators, the API's fields and the services all use
these; each refusal is an InvalidInput naming the field."""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

from api.phones import mask_phone

from .errors import DuplicatePhone, InvalidInput

# ASCII digits only, and nothing after them (`$` would let a trailing newline in; `\d` takes
# Arabic-Indic, Devanagari and fullwidth digits: "different" numbers that are the same number).
PHONE_RE = re.compile(r"^7[0-9]{10}\Z")
OPERATOR_CODE_RE = re.compile(r"^[0-9]{3}\Z")
TAG_MAX_LENGTH = 64

PHONE_MESSAGE = "Phone must be 7XXXXXXXXXX: 11 ASCII digits (0-9) starting with 7."
OPERATOR_CODE_MESSAGE = "Operator code must be 3 ASCII digits (0-9)."
TIMEZONE_MESSAGE = "Unknown IANA time zone (e.g. Europe/Moscow, UTC)."

# Files in the zoneinfo folder that are not IANA zone names: the host's own zone, the POSIX
# rule template, tzdata's placeholder, and the duplicate posix/ and right/ trees.
_NOT_ZONES = {"localtime", "posixrules", "Factory"}


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(
        name
        for name in available_timezones()
        if name not in _NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def check_phone_number(value: str) -> None:
    if not isinstance(value, str) or not PHONE_RE.match(value):
        raise InvalidInput(PHONE_MESSAGE, field="phone_number")


def check_operator_code(value: str) -> None:
    if not isinstance(value, str) or not OPERATOR_CODE_RE.match(value):
        raise InvalidInput(OPERATOR_CODE_MESSAGE, field="mobile_operator_code")


def check_tag(value: str) -> None:
    """A client's label, also what a campaign's `tag` names (empty: no tag)."""
    if not isinstance(value, str):
        raise InvalidInput("Not a valid string.", field="tag")
    if len(value) > TAG_MAX_LENGTH:
        raise InvalidInput(
            f"Ensure this field has no more than {TAG_MAX_LENGTH} characters.", field="tag"
        )


def check_timezone(value: str) -> None:
    if value not in known_timezones():
        raise InvalidInput(TIMEZONE_MESSAGE, field="timezone")


def check_client(
    *,
    phone_number: str | None = None,
    mobile_operator_code: str | None = None,
    tag: str | None = None,
    timezone: str | None = None,
) -> None:
    """The field rules of a client; a field left None is not checked (an update keeping it)."""
    if phone_number is not None:
        check_phone_number(phone_number)
    if mobile_operator_code is not None:
        check_operator_code(mobile_operator_code)
    if tag is not None:
        check_tag(tag)
    if timezone is not None:
        check_timezone(timezone)


# A list of phone numbers in one request (opt-out); a test send takes far fewer.
MAX_PHONES_PER_REQUEST = 1_000


def check_phone_list(
    values, *, field: str = "phones", limit: int = MAX_PHONES_PER_REQUEST, allow_empty=False
) -> list[str]:
    """A JSON list of 7XXXXXXXXXX strings (integers accepted), 1..limit of them: the numbers
    as text, repeats dropped. InvalidInput naming `field`; bad numbers are shown masked."""
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise InvalidInput("Must be a list of phone numbers.", field=field)
    if not values and not allow_empty:
        raise InvalidInput("Give at least one phone number.", field=field)
    if len(values) > limit:
        raise InvalidInput(f"At most {limit} phone numbers per request.", field=field)
    texts = [
        str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        for value in values
    ]
    bad = [text or "?" for text in texts if text is None or not PHONE_RE.match(text)]
    if bad:
        shown = ", ".join(mask_phone(text) for text in bad[:5])
        raise InvalidInput(f"{len(bad)} value(s) are not 7XXXXXXXXXX: {shown}.", field=field)
    return list(dict.fromkeys(texts))


def ensure_phone_free(phone_number: str, *, client_id: int | None = None) -> None:
    """DuplicatePhone if another active (not deleted) client has this number. The partial
    unique index is the last word (two requests may race past this check); this one answers
    before a write, and with the field named."""
    from api.models import Client  # api.models takes its validators from this module

    taken = Client.objects.filter(phone_number=phone_number)
    if client_id is not None:
        taken = taken.exclude(pk=client_id)
    if taken.exists():
        raise DuplicatePhone()
