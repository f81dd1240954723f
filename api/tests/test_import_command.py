"""`manage.py import_clients FILE.csv`: the progress bar, the report, --mode and --resume."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from api.models import Client, ClientImport
from api.tests.factories import ClientFactory

HEADER = "phone_number,mobile_operator_code,tag,timezone\n"


def run(*args) -> str:
    out = io.StringIO()
    call_command("import_clients", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_command_imports_the_file_and_prints_counts_and_refusals(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(HEADER + "79000000001,900,vip,UTC\n79000000002,900,,Nowhere\n")
    output = run(str(path))
    assert "2/2" in output  # the progress bar's last state
    assert "created 1" in output and "invalid 1" in output
    assert "line 3: timezone: Unknown IANA time zone" in output
    assert Client.objects.get().tag == "vip"
    assert ClientImport.objects.get().rows_total == 2


@pytest.mark.django_db
def test_command_create_only_leaves_existing_clients(tmp_path):
    ClientFactory(phone_number="79000000001", tag="keep")
    path = tmp_path / "clients.csv"
    path.write_text(HEADER + "79000000001,900,new,UTC\n")
    assert "exists 1" in run(str(path), "--mode", "create-only")
    assert Client.objects.get().tag == "keep"


@pytest.mark.django_db
def test_command_resume_of_a_finished_import_changes_nothing(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(HEADER + "79000000001,900,vip,UTC\n")
    run(str(path))
    job = ClientImport.objects.get()
    Client.objects.update(tag="edited")
    assert f"import {job.pk} done" in run(str(path), "--resume", str(job.pk))
    assert Client.objects.get().tag == "edited"


@pytest.mark.django_db
def test_command_refuses_a_file_without_required_columns(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text("phone_number\n79000000001\n")
    with pytest.raises(CommandError, match="mobile_operator_code"):
        run(str(path))
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "missing.csv"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tags_with_tabs_and_backslashes_survive_the_copy_text(tmp_path):
    # Outside a transaction the Postgres path reads ahead and sends COPY text it escaped.
    path = tmp_path / "clients.csv"
    tags = ["a\tb", "back\\slash", "new\\nline?", "тег,с запятой", '"quoted"']
    rows = "".join(
        f'7900000000{i},900,"{tag.replace(chr(34), chr(34) * 2)}",UTC\n'
        for i, tag in enumerate(tags)
    )
    path.write_text(HEADER + rows)
    assert "created 5" in run(str(path))
    assert sorted(Client.objects.values_list("tag", flat=True)) == sorted(tags)


@pytest.mark.django_db
def test_command_resumes_a_stored_upload_by_id():
    from api.services.client_import import create_import

    job = create_import(
        source="csv", mode="upsert", stream=io.BytesIO((HEADER + "79000000001,900,,UTC\n").encode())
    )
    assert f"import {job.pk} done" in run("--resume", str(job.pk))
    assert Client.objects.get().phone_number == "79000000001"
    with pytest.raises(CommandError, match="Give the CSV file"):
        run()
