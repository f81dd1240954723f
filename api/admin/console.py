"""The campaign page's console: the operator's buttons and the live numbers.

Each button calls the same service as the API's endpoint (api/services/campaigns.py) and shows
what the API would answer with a 409 or a 400 as an admin message. The activity endpoint is
what the page polls while the campaign runs: read from the kept counters, never the messages.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from api import campaign_activity
from api.domain.errors import CampaignStateConflict, DomainError
from api.models import ACTIVE_CAMPAIGN_STATUSES, Campaign, CampaignStatus
from api.preview import audience_preview
from api.services import campaigns as campaign_services

from .charts import legend, progress_bar, sent_chart

FAILURE_REASONS_SECONDS = 30


def _start(campaign_id: int, **options) -> str:
    run = campaign_services.start_campaign(campaign_id=campaign_id, **options)
    return f"Started run {run.number}."


def _pause(campaign_id: int) -> str:
    campaign_services.pause_campaign(campaign_id=campaign_id)
    return "Paused."


def _resume(campaign_id: int) -> str:
    campaign_services.resume_campaign(campaign_id=campaign_id)
    return "Resumed."


def _cancel(campaign_id: int) -> str:
    campaign_services.cancel_campaign(campaign_id=campaign_id)
    return "Cancelled."


# name -> (button label, the service call returning what the page says when it worked). The
# arguments are the API's: start's body {"force_resend": true} / {"only": "failed"}.
ACTIONS = {
    "start": ("Start", _start),
    "pause": ("Pause", _pause),
    "resume": ("Resume", _resume),
    "cancel": ("Cancel", _cancel),
    "force_resend": ("Force re-send", lambda pk: _start(pk, force_resend=True)),
    "resend_failed": ("Resend to failed", lambda pk: _start(pk, only_failed=True)),
}


def available_actions() -> list[tuple[str, str]]:
    """(name, label) of the buttons the page shows (every one, the 409 rules decide)."""
    return [(name, label) for name, (label, _) in ACTIONS.items()]


@require_POST
def run_action(request, model_admin, object_id: str, action: str):
    """POST: one button. The service's refusal is the message the API would give (409/400)."""
    campaign = get_object_or_404(Campaign, pk=object_id)
    if not model_admin.has_change_permission(request, campaign):
        raise PermissionDenied
    if action not in dict(available_actions()):
        raise Http404("No such action.")
    try:
        done = ACTIONS[action][1](campaign.pk)
    except CampaignStateConflict as error:
        messages.error(request, f"Refused (409): {error.message}")
    except DomainError as error:
        messages.error(request, f"Refused (400, {error.field}): {error.message}")
    else:
        messages.success(request, done)
    return redirect("admin:api_campaign_change", campaign.pk)


def activity_context(campaign: Campaign) -> dict:
    """The live part of the page (numbers, bar, chart, runs, failures) as template context."""
    activity = campaign_activity.campaign_activity(campaign)
    run_ids = [run["id"] for run in activity["runs"]]
    upcoming = activity["next_planned_send"]
    return {
        "activity": activity,
        "next_send": datetime.fromisoformat(upcoming) if upcoming else None,
        "legend": legend(),
        "progress_bar": progress_bar(activity["progress"]),
        "sent_chart": sent_chart(activity["sent_series"]),
        "failure_reasons": _failure_reasons(campaign.pk, run_ids),
        "failure_sample": campaign_activity.FAILURE_SAMPLE,
        "is_live": campaign.status in ACTIVE_CAMPAIGN_STATUSES,
    }


def _failure_reasons(campaign_id: int, run_ids: list[int]) -> list[tuple[str, int]]:
    """The failure sample reads messages (bounded, but up to a partition scan when failures
    are rare): computed at most every FAILURE_REASONS_SECONDS per campaign, not per refresh."""
    if not run_ids:
        return []
    key = f"console:failure-reasons:{campaign_id}:{max(run_ids)}"
    return cache.get_or_set(
        key, lambda: campaign_activity.failure_reasons(run_ids), FAILURE_REASONS_SECONDS
    )


def activity_json(request, model_admin, object_id: str):
    """GET (staff): the numbers and the page's live fragment, for the refresh script."""
    campaign = get_object_or_404(Campaign, pk=object_id)
    if not model_admin.has_view_permission(request, campaign):
        raise PermissionDenied
    context = activity_context(campaign)
    html = render_to_string("admin/api/campaign/console_activity.html", context, request)
    body = {**context["activity"], "is_live": context["is_live"], "html": html}
    return JsonResponse(body)


def audience_preview_context(campaign: Campaign) -> dict | None:
    """The audience preview (api.preview, the API's GET /campaigns/<id>/preview/) before the
    first start, in the server's zone; None once the campaign has started."""
    if campaign.status != CampaignStatus.DRAFT:
        return None
    result = audience_preview(campaign, settings.TIME_ZONE)
    points = [(row["hour"], row["messages"]) for row in result["histogram_utc"]]
    return {
        **result,
        "histogram_chart": sent_chart({"points": points, "bucket": "hour"}, noun="planned"),
    }
