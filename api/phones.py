"""Phone masking for logs and errors. No Django imports: gunicorn's config (its access log)
uses it before any app is loaded."""

from __future__ import annotations

import re

_PHONE_LIKE = {10: re.compile(r"\d{10,}"), 7: re.compile(r"\d{7,}")}


def mask_phone(phone: str | int) -> str:
    """7900***4567: enough to tell numbers apart in a log, not enough to dial."""
    text = str(phone)
    return f"{text[:4]}***{text[-4:]}" if len(text) > 8 else "***"


def scrub_phones(text: str, *, min_digits: int = 10) -> str:
    """Mask every run of `min_digits` or more digits in free text (gateway replies, errors,
    access-log lines)."""
    pattern = _PHONE_LIKE.get(min_digits) or re.compile(rf"\d{{{min_digits},}}")
    return pattern.sub(lambda match: mask_phone(match.group()), text)
