"""Campaigns in the admin: the list with a progress bar per campaign, the campaign page as the
operator's console (api/admin/console.py) and the form, saved through the same services and
rules as the API."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.urls import path
from django.utils import timezone

from api import campaign_activity
from api.domain.campaigns import CAMPAIGN_FIELDS
from api.models import CLOSED_CAMPAIGN_STATUSES, Campaign
from api.services import campaigns as campaign_services

from . import console
from .charts import SEGMENTS, progress_bar


class ProgressChangeList(ChangeList):
    """After the page's rows are read: their progress from the counters in one query, and the
    next planned send of the active ones (one statement of due-index probes)."""

    def get_results(self, request):
        super().get_results(request)
        numbers = campaign_activity.campaigns_progress([c.pk for c in self.result_list])
        upcoming = campaign_activity.next_planned_sends(self.result_list)
        for campaign in self.result_list:
            campaign.console_progress = numbers[campaign.pk]
            campaign.console_next_send = upcoming.get(campaign.pk)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "tag",
        "progress",
        "next_send",
        "start_datetime",
        "end_datetime",
    )
    list_filter = ("status",)
    search_fields = ("tag", "text_message")
    readonly_fields = ("status", "created_at", "updated_at")
    change_form_template = "admin/api/campaign/console_change_form.html"
    # No bulk actions: "delete selected" would bypass delete_campaign's rule, and the action
    # checkbox was a quarter of the list's rendering time (bench_console.py).
    actions = None
    list_per_page = 50

    class Media:
        css = {"all": ["api/console.css"]}

    def get_changelist(self, request, **kwargs):
        return ProgressChangeList

    @admin.display(description="messages (sent / pending / failed / expired / cancelled)")
    def progress(self, obj):
        return progress_bar(getattr(obj, "console_progress", None) or {"total": 0})

    @admin.display(description="next planned send")
    def next_send(self, obj):
        upcoming = getattr(obj, "console_next_send", None)
        return timezone.localtime(upcoming).strftime("%Y-%m-%d %H:%M") if upcoming else "—"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status in CLOSED_CAMPAIGN_STATUSES:
            return (*self.readonly_fields, *CAMPAIGN_FIELDS)  # the service refuses edits (409)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through the services, as the API: a new campaign is a draft (the console's Start
        button starts it); an edit passes only the fields the operator changed."""
        if change:
            changed = {name: getattr(obj, name) for name in CAMPAIGN_FIELDS}
            changed = {k: v for k, v in changed.items() if k in form.changed_data}
            saved = campaign_services.update_campaign(campaign_id=obj.pk, **changed)
        else:
            fields = {name: getattr(obj, name) for name in CAMPAIGN_FIELDS}
            saved = campaign_services.create_campaign(auto_start=False, **fields)
        obj.pk, obj.status, obj._state.adding = saved.pk, saved.status, False
        obj.created_at, obj.updated_at = saved.created_at, saved.updated_at

    def delete_model(self, request, obj):
        # The admin's delete page already refuses a campaign with runs (PROTECT lists them).
        campaign_services.delete_campaign(campaign_id=obj.pk)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/activity/",
                wrap(lambda request, object_id: console.activity_json(request, self, object_id)),
                name="api_campaign_activity",
            ),
            path(
                "<path:object_id>/console/<str:action>/",
                wrap(
                    lambda request, object_id, action: console.run_action(
                        request, self, object_id, action
                    )
                ),
                name="api_campaign_console_action",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if campaign is not None:
            extra.update(console.activity_context(campaign))
            extra["console_actions"] = console.available_actions()
            extra["audience_preview"] = console.audience_preview_context(campaign)
            extra["segments"] = SEGMENTS
        return super().change_view(request, object_id, form_url, extra_context=extra)
