"""`python manage.py recount_stats [--run N ...] [--dry-run]`: check the stats counters."""

from django.core.management.base import BaseCommand

from api.services.counters import recount_runs
from api.services.sent_minutes import recount_sent_minutes


class Command(BaseCommand):
    help = (
        "Recount runs' message counters from their messages, report every difference and "
        "repair it (for operators after a manual data fix). Writes to messages wait meanwhile."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, action="append", dest="runs", help="run id")
        parser.add_argument("--dry-run", action="store_true", help="report only, repair nothing")

    def handle(self, *args, runs=None, dry_run=False, **options):
        self._recount_sent_minutes(runs, dry_run)
        differences = recount_runs(runs, repair=not dry_run)
        if not differences:
            self.stdout.write("Counters match the messages.")
            return
        for run_id, wrong in sorted(differences.items()):
            detail = ", ".join(f"{s}: {kept} -> {actual}" for s, (kept, actual) in wrong.items())
            self.stdout.write(f"run {run_id}: {detail}")
        verb = "would be repaired" if dry_run else "repaired"
        self.stdout.write(f"{len(differences)} run(s) {verb}.")

    def _recount_sent_minutes(self, runs, dry_run: bool) -> None:
        """The console's sent-per-minute rows (api/services/sent_minutes.py), the same way."""
        differences = recount_sent_minutes(runs, repair=not dry_run)
        for run_id, wrong in sorted(differences.items()):
            detail = ", ".join(
                f"{at:%Y-%m-%d %H:%M}: {kept} -> {actual}" for at, (kept, actual) in wrong.items()
            )
            self.stdout.write(f"run {run_id} sent per minute: {detail}")
        if differences:
            verb = "would be repaired" if dry_run else "repaired"
            self.stdout.write(f"{len(differences)} run(s)' sent-per-minute rows {verb}.")
