from django.contrib import admin
from django.db.models import IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from .models import (
    Campaign,
    CampaignRun,
    Client,
    Message,
    MessageStatus,
    RunStatusCount,
)
from .phones import mask_phone
from .selectors import RUN_SUMMARY_FIELDS

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


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("id", "masked_phone", "mobile_operator_code", "tag", "timezone", "deleted_at")
    list_filter = ("mobile_operator_code", "tag", "timezone")
    search_fields = ("phone_number", "tag")
    readonly_fields = ("created_at", "updated_at", "deleted_at")

    def get_queryset(self, request):
        return Client.all_objects.all()

    @admin.display(description="phone")
    def masked_phone(self, obj):
        return mask_phone(obj.phone_number)


class RunInline(admin.TabularInline):
    model = CampaignRun
    extra = 0
    can_delete = False
    fields = RUN_SUMMARY_FIELDS[1:]  # what the stats show of a run, its id aside
    readonly_fields = fields


@admin.register(Campaign)
class CampaignAdmin(ProgressMixin, admin.ModelAdmin):
    run_lookup = "run__campaign_id"
    list_display = ("id", "status", "tag", "start_datetime", "end_datetime", "progress")
    list_filter = ("status",)
    search_fields = ("tag", "text_message")
    readonly_fields = ("status", "created_at", "updated_at", "progress")
    inlines = [RunInline]


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


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Message history is read-only: it is the record of what was sent."""

    list_display = ("id", "run", "client_id", "status", "planned_send_at", "attempts", "sent_at")
    list_filter = ("status",)
    search_fields = ("client__phone_number",)
    raw_id_fields = ("run", "client")
    show_full_result_count = False
    list_select_related = ("run",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


from . import admin_import  # noqa: E402, F401 - the bulk import's pages (issue 13)
