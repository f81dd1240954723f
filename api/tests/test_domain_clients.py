"""The client rules called directly (api/domain/clients.py): each refusal names its field."""

import pytest

from api.domain.clients import (
    TAG_MAX_LENGTH,
    check_client,
    check_operator_code,
    check_phone_number,
    check_tag,
    check_timezone,
    ensure_phone_free,
)
from api.domain.errors import DuplicatePhone, InvalidInput
from api.tests.factories import ClientFactory


@pytest.mark.parametrize("phone", ["79000000001", "70000000000"])
def test_a_phone_of_7_and_ten_ascii_digits_is_accepted(phone):
    check_phone_number(phone)


@pytest.mark.parametrize(
    "phone",
    ["89000000001", "7900000000", "790000000011", "79000000001\n", "٧٩٠٠٠٠٠٠٠٠١", 79000000001],
)
def test_any_other_phone_is_refused_naming_phone_number(phone):
    with pytest.raises(InvalidInput) as refused:
        check_phone_number(phone)

    assert refused.value.field == "phone_number"
    assert "7XXXXXXXXXX" in refused.value.message


@pytest.mark.parametrize("code", ["90", "9000", "٩٠٠", "９００", "90a"])
def test_an_operator_code_not_of_3_ascii_digits_is_refused_naming_it(code):
    with pytest.raises(InvalidInput) as refused:
        check_operator_code(code)

    assert refused.value.field == "mobile_operator_code"


def test_a_tag_up_to_the_limit_is_accepted_and_longer_is_refused_naming_tag():
    check_tag("")
    check_tag("t" * TAG_MAX_LENGTH)
    with pytest.raises(InvalidInput) as refused:
        check_tag("t" * (TAG_MAX_LENGTH + 1))

    assert refused.value.field == "tag"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "localtime", "posixrules", "Factory", "posix/UTC"]
)
def test_a_time_zone_must_be_a_real_iana_name(zone):
    check_timezone("Europe/Moscow")
    with pytest.raises(InvalidInput) as refused:
        check_timezone(zone)

    assert refused.value.field == "timezone"
    assert refused.value.message == "Unknown IANA time zone (e.g. Europe/Moscow, UTC)."


def test_check_client_checks_only_the_fields_given():
    check_client(tag="gold")  # an update of the tag alone

    with pytest.raises(InvalidInput) as refused:
        check_client(phone_number="79000000001", mobile_operator_code="900", timezone="Nowhere")

    assert refused.value.field == "timezone"


def test_a_phone_of_an_active_client_is_taken_but_not_its_own_nor_a_deleted_ones(db):
    from django.utils import timezone

    owner = ClientFactory(phone_number="79000000001")
    ClientFactory(phone_number="79000000002", deleted_at=timezone.now())

    with pytest.raises(DuplicatePhone) as refused:
        ensure_phone_free("79000000001")
    ensure_phone_free("79000000001", client_id=owner.pk)
    ensure_phone_free("79000000002")

    assert refused.value.field == "phone_number"
