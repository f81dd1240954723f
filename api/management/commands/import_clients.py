"""`python manage.py import_clients FILE.csv [--mode upsert|create-only] [--resume ID]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.domain.client_import import OUTCOMES
from api.domain.errors import InvalidInput
from api.models import ClientImport, ImportMode, ImportStatus
from api.services.client_import import import_csv_path, run_stored_import


class Command(BaseCommand):
    help = (
        "Import clients from a CSV file (phone_number,mobile_operator_code,tag,timezone"
        "[,opted_out]), upserting by phone in committed chunks, with a progress bar and the "
        "report. An interrupted import is continued with --resume ID (its committed chunks are "
        "skipped); re-importing a file already applied writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="the CSV file (none: --resume a stored one)")
        parser.add_argument("--mode", choices=ImportMode.values, default=ImportMode.UPSERT)
        parser.add_argument("--resume", type=int, help="id of an interrupted import of the file")
        parser.add_argument("--report-rows", type=int, default=20, help="refusals to print")

    def handle(self, *args, path, mode, resume=None, report_rows=20, **options):
        console = Console(file=self.stdout._out, stderr=False)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("rows", total=None)

            def advance(job):
                progress.update(task, total=job.rows_total, completed=job.rows_done)

            try:
                if path is None and resume is None:
                    raise CommandError("Give the CSV file, or --resume ID of a stored import.")
                if path is None:  # an upload's import, its input stored in the database
                    job = run_stored_import(import_id=resume, progress=advance)
                else:
                    job = import_csv_path(path=path, mode=mode, resume=resume, progress=advance)
            except (InvalidInput, OSError, ClientImport.DoesNotExist) as error:
                raise CommandError(str(getattr(error, "message", error))) from None
            advance(job)
        self._report(job, report_rows)

    def _report(self, job, report_rows: int) -> None:
        counts = ", ".join(f"{name} {job.counts.get(name, 0)}" for name in OUTCOMES)
        self.stdout.write(f"import {job.pk} {job.status}: {job.rows_done} rows; {counts}")
        for row in job.report[:report_rows]:
            self.stdout.write(f"  line {row['line']}: {row['field']}: {row['reason']}")
        if len(job.report) > report_rows or job.report:
            self.stdout.write(f"  (the whole report: GET /api/imports/{job.pk}/)")
        if job.status == ImportStatus.FAILED:
            raise CommandError(job.error)
