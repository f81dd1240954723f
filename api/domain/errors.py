"""What the rules refuse, said in domain terms; `field` names what to fix. No HTTP: the API's
exception handler maps each kind to a status (api/exceptions.py), the admin to a form error."""

from __future__ import annotations

from contextlib import contextmanager


class DomainError(Exception):
    def __init__(self, message: str, *, field: str = "non_field_errors"):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """A value breaks a rule (a format, a range, an order of dates)."""


class NotFound(InvalidInput):
    """An object named in the input is gone (deleted meanwhile)."""


class DuplicatePhone(InvalidInput):
    """Another active client has this phone number."""

    def __init__(self, message: str = "A client with this phone number already exists."):
        super().__init__(message, field="phone_number")


class CampaignEnded(InvalidInput):
    """The campaign's end is past: nothing can be sent any more."""

    def __init__(self, message: str = "The campaign has already ended."):
        super().__init__(message, field="end_datetime")


class AudienceEmpty(InvalidInput):
    """No active client matches the campaign's tag / client_filter."""

    def __init__(
        self,
        message: str = (
            "The campaign's audience is empty: no client matches its tag / client_filter."
        ),
    ):
        super().__init__(message, field="client_filter")


class CampaignStateConflict(DomainError):
    """The campaign's status does not allow this action (edit, start, pause, ...)."""

    def __init__(self, message: str, *, field: str = "status"):
        super().__init__(message, field=field)


@contextmanager
def refusals_as(error_class: type[Exception], *, field_level: bool = False):
    """Re-raise an InvalidInput as a framework's validation error (Django's for the model's
    validators and clean(), DRF's for the API's fields): a field validator's own message, or
    {field: [message]} from a check of the whole object."""
    try:
        yield
    except InvalidInput as error:
        raise error_class(
            error.message if field_level else {error.field: [error.message]}
        ) from None
