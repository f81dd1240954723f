"""Who a campaign targets: its tag and its `client_filter`, given as the seed's list or as
`{"phone_numbers": [...], "tags": [...], "operator_codes": [...]}`, the limits on both forms,
and the one WHERE clause they make. Refusals name `client_filter` (or `tag` for no audience)."""

from __future__ import annotations

from django.db.models import Q

from .clients import OPERATOR_CODE_RE, PHONE_RE, TAG_MAX_LENGTH, is_ascii_digits
from .errors import InvalidInput

MAX_FILTER_PHONES = 10_000
MAX_FILTER_ITEMS = 1_000
FILTER_KEYS = ("phone_numbers", "tags", "operator_codes")
NO_AUDIENCE_MESSAGE = (
    "Give a tag (or client_filter.tags) or client_filter.phone_numbers: "
    "a campaign needs an audience."
)

ClientFilter = dict[str, list[str]]


def normalize_client_filter(raw) -> ClientFilter:
    """The filter as a dict of three lists; the seed's list form is a list of phone numbers
    (3-digit items read as operator codes, anything else as tags). Lenient: for reading a
    stored filter; parse_client_filter is the check on a filter being written."""
    result: ClientFilter = {key: [] for key in FILTER_KEYS}
    if not raw:
        return result
    if isinstance(raw, list | tuple):
        for item in raw:
            text = str(item).strip()
            if is_ascii_digits(text) and len(text) == 11:
                result["phone_numbers"].append(text)
            elif is_ascii_digits(text) and len(text) == 3:
                result["operator_codes"].append(text)
            elif text:
                result["tags"].append(text)
        return result
    for key in result:
        result[key] = [str(value).strip() for value in raw.get(key) or [] if str(value).strip()]
    return result


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, field="client_filter")


def _check_form(raw) -> list:
    """An object of the three keys, each a list (or null), or the seed's list: its items."""
    if isinstance(raw, list):
        return raw
    if not isinstance(raw, dict):
        raise _refused("Must be an object or a list.")
    unknown = set(raw) - set(FILTER_KEYS)
    if unknown:
        raise _refused(
            f"Unknown keys: {', '.join(sorted(unknown))}; use phone_numbers, tags, operator_codes."
        )
    for key, value in raw.items():
        if value is not None and not isinstance(value, list):
            raise _refused(f"{key} must be a list.")
    return [item for value in raw.values() for item in value or []]


def _check_items(items: list) -> None:
    # Only text (or integer) items: anything else would be read as its repr, e.g. a tag.
    if any(isinstance(item, bool) or not isinstance(item, str | int) for item in items):
        raise _refused("Items must be strings: phone numbers, tags, operator codes.")
    texts = [str(item).strip() for item in items]
    if any(text.isdigit() and not text.isascii() for text in texts):
        raise _refused("Phone numbers and operator codes are ASCII digits 0-9 only.")


def _check_values(result: ClientFilter) -> None:
    bad_phones = [phone for phone in result["phone_numbers"] if not PHONE_RE.match(phone)]
    if bad_phones:
        raise _refused(f"phone_numbers: {len(bad_phones)} value(s) are not 7XXXXXXXXXX.")
    if any(not OPERATOR_CODE_RE.match(code) for code in result["operator_codes"]):
        raise _refused("operator_codes must be 3-digit strings.")
    if any(len(tag) > TAG_MAX_LENGTH for tag in result["tags"]):
        raise _refused(f"tags are at most {TAG_MAX_LENGTH} characters.")
    if len(result["phone_numbers"]) > MAX_FILTER_PHONES:
        raise _refused(
            f"At most {MAX_FILTER_PHONES} phone_numbers; use a tag for larger audiences."
        )
    if max(len(result["tags"]), len(result["operator_codes"])) > MAX_FILTER_ITEMS:
        raise _refused(f"At most {MAX_FILTER_ITEMS} tags / operator_codes.")


def parse_client_filter(raw) -> ClientFilter:
    """A client_filter being written (None, the seed's list or the object form), checked and
    normalized, repeats dropped; InvalidInput naming client_filter."""
    if raw is None or raw == "":
        return normalize_client_filter(None)
    _check_items(_check_form(raw))
    result = normalize_client_filter(raw)
    _check_values(result)
    return {key: list(dict.fromkeys(values)) for key, values in result.items()}


def audience_tags(*, tag: str, client_filter) -> list[str]:
    """The campaign's own tag first, then client_filter's, without repeats."""
    tags = ([tag] if tag else []) + normalize_client_filter(client_filter)["tags"]
    return list(dict.fromkeys(tags))


# One condition of an audience: the client field and the values it may take. The ORM filter
# below and the SQL WHERE (api/services/sql/where.py) are both rendered from these.
AudienceCondition = tuple[str, list[str]]

# Who is never in an audience, whatever the filter: deleted and opted-out clients.
REACHABLE = {"deleted_at": None, "opted_out": False}


def audience_conditions(*, tag: str, client_filter) -> list[AudienceCondition] | None:
    """The seed's rules as conditions that must all hold; None when the campaign names no
    audience.

    Phone numbers, when given, are the audience and tags/operator codes only narrow it;
    otherwise the audience is the clients with one of the tags, narrowed by operator codes.
    """
    filters = normalize_client_filter(client_filter)
    tags = audience_tags(tag=tag, client_filter=filters)
    if not filters["phone_numbers"] and not tags:
        return None
    conditions: list[AudienceCondition] = []
    if filters["phone_numbers"]:
        conditions.append(("phone_number", filters["phone_numbers"]))
    if tags:
        conditions.append(("tag", tags))
    if filters["operator_codes"]:
        conditions.append(("mobile_operator_code", filters["operator_codes"]))
    return conditions


def audience_filter(*, tag: str, client_filter, opted_out: bool = False) -> Q | None:
    """audience_conditions as one ORM WHERE over active clients (the opted-out ones with
    `opted_out=True`: who the audience would hold but for their opt-out); None when the
    campaign names no audience."""
    conditions = audience_conditions(tag=tag, client_filter=client_filter)
    if conditions is None:
        return None
    condition = Q(**{**REACHABLE, "opted_out": opted_out})
    for field, values in conditions:
        condition &= Q(**{f"{field}__any_of": values})
    return condition


def check_has_audience(*, tag: str, client_filter) -> None:
    """A campaign names someone: a tag, client_filter tags or phone numbers (operator codes
    alone only narrow)."""
    if audience_filter(tag=tag, client_filter=client_filter) is None:
        raise InvalidInput(NO_AUDIENCE_MESSAGE, field="tag")
