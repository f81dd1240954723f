from django.contrib import admin
from django.db.models import IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from api.models import CampaignRun, MessageStatus, RunStatusCount

_UNSENT = [MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.CANCELLED]


def _counted(run_lookup: str, statuses=None):
    """A subquery summing the run counters (never the messages) of the outer row's runs."""
    counts = RunStatusCount.objects.filter(**{run_lookup: OuterRef("pk")})
    if statuses is not None:
        counts = counts.filter(status__in=statuses)
    total = counts.values(run_lookup).annotate(n=Sum("count")).values("n")[:1]
    return Coalesce(Subquery(total, output_field=IntegerField()), 0)


class ProgressMixin:
    """A "messages" column from the run counters: the same exact numbers as the stats API, at
    its cost. `run_lookup` leads from a counter row to the admin's own row."""

    run_lookup = "run_id"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                sent_count=_counted(self.run_lookup, [MessageStatus.SENT]),
                unsent_count=_counted(self.run_lookup, _UNSENT),
                message_count=_counted(self.run_lookup),
            )
        )

    @admin.display(description="messages")
    def progress(self, obj):
        sent, unsent, total = obj.sent_count, obj.unsent_count, obj.message_count
        if not total:
            return "no messages"
        done = 100 * (sent + unsent) // total
        ended = "not sent (failed, expired, cancelled)"
        return f"{sent:,} sent, {unsent:,} {ended} of {total:,}: {done} % done"


@admin.register(CampaignRun)
class CampaignRunAdmin(ProgressMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "campaign",
        "number",
        "status",
        "planned_messages",
        "skipped_clients",
        "progress",
    )
    list_filter = ("status",)
    readonly_fields = [f.name for f in CampaignRun._meta.fields] + ["progress"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
