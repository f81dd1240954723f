"""`python manage.py recount_stats [--run N ...] [--dry-run]`: check the stats counters."""

from django.core.management.base import BaseCommand

from api.services.counters import recount_runs


class Command(BaseCommand):
    help = (
        "Recount runs' message counters from their messages, report every difference and "
        "repair it (for operators after a manual data fix). Writes to messages wait meanwhile."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, action="append", dest="runs", help="run id")
        parser.add_argument("--dry-run", action="store_true", help="report only, repair nothing")

    def handle(self, *args, runs=None, dry_run=False, **options):
        differences = recount_runs(runs, repair=not dry_run)
        if not differences:
            self.stdout.write("Counters match the messages.")
            return
        for run_id, wrong in sorted(differences.items()):
            detail = ", ".join(f"{s}: {kept} -> {actual}" for s, (kept, actual) in wrong.items())
            self.stdout.write(f"run {run_id}: {detail}")
        verb = "would be repaired" if dry_run else "repaired"
        self.stdout.write(f"{len(differences)} run(s) {verb}.")
