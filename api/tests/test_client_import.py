"""Bulk client import through the API: every report case, upsert and create-only, the JSON
array, the async path and the status endpoint (SQLite and Postgres)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.domain.client_import import DUPLICATE_MESSAGE
from api.domain.clients import OPERATOR_CODE_MESSAGE, PHONE_MESSAGE, TIMEZONE_MESSAGE
from api.models import Client, ClientImport

HEADER = "phone_number,mobile_operator_code,tag,timezone\n"


def upload(api, text: str | bytes, *, mode: str | None = None, name: str = "clients.csv"):
    data = text.encode() if isinstance(text, str) else text
    body = {"file": SimpleUploadedFile(name, data, content_type="text/csv")}
    if mode:
        body["mode"] = mode
    return api.post("/api/clients/import/", body, format="multipart")


def counts(response) -> dict:
    return {k: v for k, v in response.json()["counts"].items() if v}


@pytest.mark.django_db
def test_good_rows_are_created_and_reported_counts_exact(api):
    response = upload(api, HEADER + "79000000001,900,vip,Europe/Moscow\n79000000002,901,,UTC\n")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "done"
    assert counts(response) == {"created": 2}
    assert response.json()["report"] == []
    client = Client.objects.get(phone_number="79000000001")
    assert (client.mobile_operator_code, client.tag, client.timezone) == (
        "900",
        "vip",
        "Europe/Moscow",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "row, field, reason",
    [
        ("7900000000x,900,,UTC", "phone_number", PHONE_MESSAGE),
        ("79000000003,900,,Mars/Olympus", "timezone", TIMEZONE_MESSAGE),
        ("79000000003,9a0,,UTC", "mobile_operator_code", OPERATOR_CODE_MESSAGE),
        ("79000000003,٩٠٠,,UTC", "mobile_operator_code", OPERATOR_CODE_MESSAGE),
        ("79000000003,900,UTC", "row", "Expected 4 fields, found 3."),
        ("79000000003,900," + "t" * 65 + ",UTC", "tag", None),
    ],
)
def test_a_bad_row_is_reported_by_line_and_field_and_good_rows_still_imported(
    api, row, field, reason
):
    text = HEADER + "79000000001,900,,UTC\n" + row + "\n79000000002,900,,UTC\n"
    response = upload(api, text)
    assert response.status_code == 200
    assert counts(response) == {"created": 2, "invalid": 1}
    [entry] = response.json()["report"]
    assert entry["line"] == 3 and entry["field"] == field
    assert reason is None or entry["reason"] == reason
    assert Client.objects.count() == 2


@pytest.mark.django_db
def test_a_row_breaking_two_rules_names_both_fields_and_counts_once(api):
    response = upload(api, HEADER + "123,9,,Nowhere\n")
    assert counts(response) == {"invalid": 1}
    fields = [entry["field"] for entry in response.json()["report"]]
    assert fields == ["phone_number", "mobile_operator_code", "timezone"]


@pytest.mark.django_db
def test_duplicate_phone_in_file_first_row_wins_and_later_is_reported(api):
    text = HEADER + "79000000001,900,first,UTC\n79000000002,900,,UTC\n79000000001,901,second,UTC\n"
    response = upload(api, text)
    assert counts(response) == {"created": 2, "duplicate": 1}
    assert response.json()["report"] == [
        {"line": 4, "field": "phone_number", "reason": DUPLICATE_MESSAGE}
    ]
    assert Client.objects.get(phone_number="79000000001").tag == "first"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "The upload is empty (0 bytes)."),
        (b"\n\n", "The file is empty: no header row."),
        (b"phone_number,tag\n79000000001,x\n", "Missing required column(s): mobile_operator_code."),
        (b"phone_number\tmobile_operator_code\n", "delimiter must be ',' or ';'"),
        (b"phone_number,mobile_operator_code,age\n", "Unknown column(s): age"),
        ("телефон,код\n".encode("cp1251"), "not UTF-8"),
    ],
)
def test_file_level_refusal_is_400_naming_file_and_writes_nothing(api, data, message):
    response = upload(api, data)
    assert response.status_code == 400
    assert message in response.json()["file"][0]
    assert not Client.all_objects.exists()
    assert not ClientImport.objects.exists()


@pytest.mark.django_db
def test_header_only_file_is_an_import_of_nothing(api):
    response = upload(api, HEADER)
    assert response.status_code == 200
    assert counts(response) == {}


@pytest.mark.django_db
def test_a_non_utf8_line_is_reported_and_the_rest_imported(api):
    data = (HEADER + "79000000001,900,,UTC\n").encode() + "79000000002,900,тег,UTC\n".encode(
        "cp1251"
    )
    response = upload(api, data + b"79000000003,900,,UTC\n")
    assert counts(response) == {"created": 2, "invalid": 1}
    assert response.json()["report"][0] == {
        "line": 3,
        "field": "row",
        "reason": "The line is not valid UTF-8 text.",
    }


@pytest.mark.django_db
def test_semicolons_bom_and_header_case_are_accepted(api):
    text = "\ufeffPhone_Number;MOBILE_OPERATOR_CODE;Tag;TimeZone\r\n79000000001;900;vip;UTC\r\n"
    response = upload(api, text.encode("utf-8"))
    assert counts(response) == {"created": 1}
    assert Client.objects.get().tag == "vip"


@pytest.mark.django_db
def test_bad_mode_is_400_naming_mode(api):
    response = upload(api, HEADER, mode="merge")
    assert response.status_code == 400 and "mode" in response.json()


@pytest.mark.django_db
def test_report_is_capped_but_counts_exact(api, settings):
    settings.IMPORT_REPORT_MAX_ROWS = 5
    response = upload(api, HEADER + "x,900,,UTC\n" * 20)
    assert counts(response) == {"invalid": 20}
    assert len(response.json()["report"]) == 5 and response.json()["report_truncated"]


@pytest.mark.django_db
def test_bulk_json_array_is_imported_with_the_same_rules(api):
    body = [
        {"phone_number": 79000000001, "mobile_operator_code": "900", "tag": "vip"},
        {"phone_number": "79000000002", "mobile_operator_code": "900", "timezone": "Nowhere"},
        "not an object",
        {"phone_number": "79000000001", "mobile_operator_code": "901"},
    ]
    response = api.post("/api/clients/bulk/", body, format="json")
    assert response.status_code == 200
    assert counts(response) == {"created": 1, "invalid": 2, "duplicate": 1}
    assert [(e["line"], e["field"]) for e in response.json()["report"]] == [
        (2, "timezone"),
        (3, "row"),
        (4, "phone_number"),
    ]
    assert Client.objects.get().timezone == "UTC"


@pytest.mark.django_db
def test_bulk_body_not_an_array_is_400(api):
    response = api.post("/api/clients/bulk/", {"phone_number": "79000000001"}, format="json")
    assert response.status_code == 400 and "clients" in response.json()


@pytest.mark.django_db
def test_large_upload_is_202_and_runs_in_the_worker(
    api, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_SYNC_MAX_BYTES = 10
    settings.IMPORT_CHUNK_ROWS = 2
    rows = "".join(f"7900000000{i},900,,UTC\n" for i in range(5))
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, HEADER + rows + "bad,900,,UTC\n")
    assert response.status_code == 202
    assert response.json()["status"] == "pending" and response.json()["rows_total"] == 6
    detail = api.get(f"/api/imports/{response.json()['id']}/").json()
    assert detail["status"] == "done" and detail["rows_done"] == 6
    assert {k: v for k, v in detail["counts"].items() if v} == {"created": 5, "invalid": 1}
    assert detail["report"][0]["line"] == 7
    assert not ClientImport.objects.get().parts.exists()


@pytest.mark.django_db
def test_large_bulk_array_is_202_and_reports_array_positions(
    api, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_SYNC_MAX_ROWS = 1
    body = [{"phone_number": "79000000001", "mobile_operator_code": "900"}, {"tag": "x"}]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/clients/bulk/?mode=create-only", body, format="json")
    assert response.status_code == 202
    detail = api.get(f"/api/imports/{response.json()['id']}/").json()
    assert detail["mode"] == "create-only"
    assert detail["report"] == [
        {"line": 2, "field": "phone_number", "reason": "This field is required."}
    ]


def test_import_needs_authentication(anon):
    assert anon.post("/api/clients/import/").status_code == 401
    assert anon.get("/api/imports/1/").status_code == 401
