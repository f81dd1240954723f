"""Bulk client import: upsert and create-only, re-imports, the opted_out column, and an
import stopped by a database error (SQLite and Postgres)."""

from __future__ import annotations

import pytest

from api.models import Client, ClientImport
from api.services.clients import delete_client
from api.tests.factories import ClientFactory
from api.tests.test_client_import import HEADER, counts, upload


@pytest.mark.django_db
def test_upsert_updates_existing_restores_deleted_and_creates_new(api):
    existing = ClientFactory(phone_number="79000000001", tag="old")
    same = ClientFactory(phone_number="79000000004", mobile_operator_code="900", tag="same")
    gone = ClientFactory(phone_number="79000000002", tag="gone")
    delete_client(client_id=gone.pk)
    text = (
        HEADER
        + "79000000001,900,new,UTC\n79000000002,902,back,Asia/Tokyo\n"
        + "79000000003,903,,UTC\n79000000004,900,same,UTC\n"
    )
    response = upload(api, text)
    assert counts(response) == {"created": 1, "updated": 1, "restored": 1, "unchanged": 1}
    existing.refresh_from_db()
    gone.refresh_from_db()
    assert existing.tag == "new"
    assert gone.deleted_at is None and (gone.tag, gone.timezone) == ("back", "Asia/Tokyo")
    assert Client.objects.filter(phone_number="79000000003").exists()
    assert Client.all_objects.count() == 4
    assert same.pk == Client.objects.get(phone_number="79000000004").pk


@pytest.mark.django_db
def test_reimport_of_the_same_file_writes_nothing(api):
    text = HEADER + "79000000001,900,a,UTC\n79000000002,900,b,UTC\n"
    upload(api, text)
    before = dict(Client.objects.values_list("phone_number", "updated_at"))
    response = upload(api, text)
    assert counts(response) == {"unchanged": 2}
    assert dict(Client.objects.values_list("phone_number", "updated_at")) == before


@pytest.mark.django_db
def test_create_only_reports_existing_phone_and_leaves_it_untouched(api):
    ClientFactory(phone_number="79000000001", tag="keep")
    gone = ClientFactory(phone_number="79000000002")
    delete_client(client_id=gone.pk)
    text = HEADER + "79000000001,900,new,UTC\n79000000002,900,,UTC\n"
    response = upload(api, text, mode="create-only")
    assert counts(response) == {"created": 1, "exists": 1}
    assert response.json()["report"][0]["line"] == 2
    assert response.json()["report"][0]["field"] == "phone_number"
    assert Client.objects.get(phone_number="79000000001").tag == "keep"
    assert Client.all_objects.filter(phone_number="79000000002").count() == 2  # a new one


def opted_out() -> dict[str, bool]:
    return dict(Client.objects.values_list("phone_number", "opted_out"))


@pytest.mark.django_db
def test_opted_out_is_written_and_kept_when_the_file_omits_it(api):
    text = HEADER.strip() + ",opted_out\n79000000001,900,,UTC,true\n79000000002,900,,UTC,no\n"
    assert counts(upload(api, text)) == {"created": 2}
    assert opted_out() == {"79000000001": True, "79000000002": False}
    changed = HEADER.strip() + ",opted_out\n79000000001,900,,UTC,false\n79000000002,900,,UTC,1\n"
    assert counts(upload(api, changed)) == {"updated": 2}
    assert opted_out() == {"79000000001": False, "79000000002": True}
    # Without the column: a new client is not opted out, an existing one keeps its choice.
    assert counts(upload(api, HEADER + "79000000002,900,x,UTC\n79000000003,900,,UTC\n")) == {
        "created": 1,
        "updated": 1,
    }
    assert opted_out() == {"79000000001": False, "79000000002": True, "79000000003": False}


@pytest.mark.django_db
def test_an_imported_opt_out_is_stamped_and_cancels_unsent_messages_like_the_endpoint(api):
    from api.models import MessageStatus
    from api.services.opt_out import OPTED_OUT_ERROR
    from api.tests.factories import CampaignRunFactory, MessageFactory

    client = ClientFactory(phone_number="79000000001")
    unsent = MessageFactory(run=CampaignRunFactory(), client=client)
    text = HEADER.strip() + ",opted_out\n79000000001,900,vip,UTC,true\n79000000005,900,,UTC,1\n"
    upload(api, text)

    client.refresh_from_db()
    unsent.refresh_from_db()
    assert client.opted_out and client.opted_out_at is not None
    assert Client.objects.get(phone_number="79000000005").opted_out_at is not None
    assert (unsent.status, unsent.last_error) == (MessageStatus.CANCELLED, OPTED_OUT_ERROR)
    upload(api, HEADER.strip() + ",opted_out\n79000000001,900,vip,UTC,false\n")
    client.refresh_from_db()
    assert not client.opted_out and client.opted_out_at is None


@pytest.mark.django_db
def test_a_bad_opted_out_value_is_reported(api):
    text = HEADER.strip() + ",opted_out\n79000000001,900,,UTC,maybe\n"
    response = upload(api, text)
    assert counts(response) == {"invalid": 1}
    assert response.json()["report"][0]["field"] == "opted_out"


@pytest.mark.django_db
def test_with_or_without_the_unchanged_probe_the_result_is_the_same(api, settings):
    # One row a chunk: a new row turns the probe off for the next chunk, an unchanged row on.
    upload(api, HEADER + "79000000001,900,a,UTC\n79000000002,900,b,UTC\n79000000003,900,c,UTC\n")
    before = dict(Client.objects.values_list("phone_number", "updated_at"))
    settings.IMPORT_CHUNK_ROWS = 1
    text = (
        HEADER
        + "79000000009,900,new,UTC\n79000000001,900,a,UTC\n"  # probe off, then on
        + "79000000002,901,b,UTC\n79000000003,900,c,UTC\n"  # probe on, then off
    )
    response = upload(api, text)
    assert counts(response) == {"created": 1, "unchanged": 2, "updated": 1}
    after = dict(Client.objects.values_list("phone_number", "updated_at"))
    assert after["79000000001"] == before["79000000001"]
    assert after["79000000003"] == before["79000000003"]
    assert after["79000000002"] != before["79000000002"]


@pytest.mark.django_db
def test_a_failed_import_stays_resumable_and_says_why_with_phones_masked(monkeypatch, tmp_path):
    from django.db import OperationalError

    from api.services.client_import import import_csv_path, ledger

    real_upsert = ledger.load.upsert

    def database_gone(**kwargs):  # the edge we cannot run here: the server going away
        raise OperationalError("server closed the connection; key 79001234567")

    path = tmp_path / "clients.csv"
    path.write_text(HEADER + "79000000001,900,,UTC\n")
    monkeypatch.setattr(ledger.load, "upsert", database_gone)
    with pytest.raises(OperationalError):
        import_csv_path(path=str(path), mode="upsert")
    job = ClientImport.objects.get()
    assert job.status == "running" and job.committed_line == 0
    assert "7900***4567" in job.error and "79001234567" not in job.error
    monkeypatch.setattr(ledger.load, "upsert", real_upsert)
    done = import_csv_path(path=str(path), mode="upsert", resume=job.pk)
    assert (done.status, done.error, done.counts) == ("done", "", {"created": 1})
