"""Message history: read-only, searchable by phone, client and status, filterable by campaign
and run, phones masked, and fast at 10M messages.

A run is an id range and a client's message in a run is one id (api/message_ids.py), so every
filter here is an id-range or primary-key lookup that Postgres answers from the partitions
concerned; the page never counts the table (CappedCountPaginator).
"""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from api.filters import MAX_RUN_ID
from api.message_ids import MESSAGE_ID_RUN_STRIDE, message_id, of_runs
from api.models import Campaign, CampaignRun, Client, Message, MessageStatus
from api.phones import mask_phone

COUNT_CAP = 2_000  # pages never count further: "2000+ messages" (40 pages; then filter)
LOOKUP_CHOICES = 30  # campaigns / runs offered in the side filters (newest first)
MAX_SEARCH_IDS = 100_000  # (runs x clients) message ids one search may look up


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (a LIMIT inside the count), never the whole table."""

    cap = COUNT_CAP

    @cached_property
    def count(self):
        return self.object_list.order_by().values("pk")[: COUNT_CAP + 1].count()


def _whole_number(value, limit: int) -> int | None:
    if value is None or not str(value).isdigit() or int(value) >= limit:
        return None
    return int(value)


class CampaignFilter(admin.SimpleListFilter):
    title = "campaign"
    parameter_name = "campaign"

    def lookups(self, request, model_admin):
        newest = Campaign.objects.order_by("-id")[:LOOKUP_CHOICES]
        return [(str(c.pk), f"#{c.pk} {c.tag or ''} ({c.status})") for c in newest]

    def queryset(self, request, queryset):
        campaign_id = _whole_number(self.value(), 2**63)
        if self.value() is None:
            return queryset
        if campaign_id is None:
            return queryset.none()
        runs = CampaignRun.objects.filter(campaign_id=campaign_id).values_list("id", flat=True)
        return queryset.filter(of_runs(runs))


class RunFilter(admin.SimpleListFilter):
    title = "run"
    parameter_name = "run"

    def lookups(self, request, model_admin):
        runs = CampaignRun.objects.order_by("-id")
        campaign_id = _whole_number(request.GET.get("campaign"), 2**63)
        if campaign_id is not None:
            runs = runs.filter(campaign_id=campaign_id)
        return [
            (str(r.pk), f"#{r.pk}: campaign {r.campaign_id} run {r.number} ({r.status})")
            for r in runs[:LOOKUP_CHOICES]
        ]

    def queryset(self, request, queryset):
        run_id = _whole_number(self.value(), MAX_RUN_ID)
        if self.value() is None:
            return queryset
        if run_id is None:
            return queryset.none()
        return queryset.filter(of_runs([run_id]))


def runs_in_scope(params) -> list[int]:
    """The runs a search may look in: the filtered run, the filtered campaign's, or all."""
    run_id = _whole_number(params.get("run"), MAX_RUN_ID)
    if run_id is not None:
        return [run_id]
    runs = CampaignRun.objects.order_by("-id")
    campaign_id = _whole_number(params.get("campaign"), 2**63)
    if campaign_id is not None:
        runs = runs.filter(campaign_id=campaign_id)
    return list(runs.values_list("id", flat=True))


def parse_search(term: str) -> tuple[set[str], set[str], set[int]]:
    """(statuses, phones, client ids) named by the search box: a status word, an 11-digit
    phone number, or a client id (`123` or `client:123`). Anything else matches nothing."""
    statuses, phones, clients = set(), set(), set()
    for word in term.split():
        word = word.strip().lower().removeprefix("client:").removeprefix("#")
        if word in MessageStatus.values:
            statuses.add(word)
        elif word.isdigit() and len(word) == 11:
            phones.add(word)
        elif word.isdigit() and int(word) < MESSAGE_ID_RUN_STRIDE:
            clients.add(int(word))
        else:
            clients.add(-1)  # an unknown word matches nothing (never a scan)
    return statuses, phones, clients


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Message history is read-only: it is the record of what was sent."""

    list_display = (
        "id",
        "campaign",
        "run_number",
        "client_id",
        "phone",
        "status",
        "planned_send_at",
        "attempts",
        "sent_at",
        "error",
    )
    list_filter = ("status", CampaignFilter, RunFilter)
    search_fields = ("id",)  # the box is parsed by get_search_results, not by field lookups
    search_help_text = (
        "A phone number (11 digits), a client id (123 or client:123) and/or a status "
        "(sent, failed, ...). Narrow by campaign or run on the right."
    )
    list_select_related = ("run", "client")
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-id",)
    list_max_show_all = 0
    list_per_page = 50  # rendering the rows is most of the page's time (bench_console.py)
    raw_id_fields = ("run", "client")

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        statuses, phones, clients = parse_search(search_term)
        if statuses:
            queryset = queryset.filter(status__in=statuses)
        if phones:
            # Active clients: the partial unique index on the phone answers (a deleted client's
            # history is found by its client id).
            found = Client.objects.filter(phone_number__in=phones).values_list("id", flat=True)
            clients |= set(found) or {-1}
        if clients:
            runs = runs_in_scope(request.GET)[: max(1, MAX_SEARCH_IDS // len(clients))]
            ids = [message_id(run, client) for run in runs for client in clients if client >= 0]
            queryset = queryset.filter(pk__any_of=ids)
        return queryset, False

    @admin.display(description="campaign")
    def campaign(self, obj):
        return obj.run.campaign_id

    @admin.display(description="run")
    def run_number(self, obj):
        return obj.run.number

    @admin.display(description="phone")
    def phone(self, obj):
        return mask_phone(obj.client.phone_number) if obj.client_id else "—"

    @admin.display(description="last error")
    def error(self, obj):
        return (obj.last_error or "")[:80]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
