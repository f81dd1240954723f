"""Admin pages of the bulk client import: upload a CSV (same rules and thresholds as
`POST /api/clients/import/`), then watch the import's progress and read its report.

Its own module, registered by one import line in api/admin (kept apart to merge easily)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .domain.client_import import OUTCOMES
from .domain.errors import InvalidInput
from .models import ClientImport, ImportMode, ImportStatus
from .services import client_import
from .views_import import enqueue_import

REFRESH_SECONDS = 2


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV: phone_number, mobile_operator_code, tag, timezone[, opted_out]"
    )
    mode = forms.ChoiceField(choices=ImportMode.choices, initial=ImportMode.UPSERT)


@admin.register(ClientImport)
class ClientImportAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "source", "mode", "file_name", "progress", "created_at"]
    list_filter = ["status", "source"]
    fields = ["status", "mode", "source", "file_name", "progress", "outcome", "error",
              "report_table", "created_at", "started_at", "finished_at"]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # the upload page adds imports

    def has_change_permission(self, request, obj=None):
        return False  # what an import did is history: viewed, not edited

    def get_urls(self):
        upload = self.admin_site.admin_view(self.upload_view)
        return [path("upload/", upload, name="api_clientimport_upload"), *super().get_urls()]

    def upload_view(self, request):
        if not request.user.has_perms(["api.add_client", "api.change_client"]):
            raise PermissionDenied  # an import creates and changes clients
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job, stored = client_import.accept_csv_upload(
                    stream=upload.open("rb"),
                    size=upload.size,
                    mode=form.cleaned_data["mode"],
                    file_name=upload.name,
                    source="admin",
                )
            except InvalidInput as refusal:
                form.add_error("file", refusal.message)
            else:
                if stored:
                    transaction.on_commit(lambda: enqueue_import(job.pk))
                messages.info(request, f"Import {job.pk}: {job.get_status_display()}.")
                return redirect(reverse("admin:api_clientimport_change", args=[job.pk]))
        context = {**self.admin_site.each_context(request), "form": form,
                   "opts": self.model._meta, "title": "Import clients from CSV"}  # fmt: skip
        return TemplateResponse(request, "admin/api/clientimport/upload.html", context)

    @admin.display(description="progress")
    def progress(self, job: ClientImport) -> str:
        total = job.rows_total or 0
        refresh = job.status in (ImportStatus.PENDING, ImportStatus.RUNNING)
        return format_html(
            '{}<progress value="{}" max="{}"></progress> <span class="rows">{} / {}</span>',
            # A page that reloads itself while the worker runs (a meta refresh works in body).
            (
                format_html('<meta http-equiv="refresh" content="{}">', REFRESH_SECONDS)
                if refresh
                else ""
            ),
            job.rows_done,
            max(total, 1),
            job.rows_done,
            total if job.rows_total is not None else "?",
        )

    @admin.display(description="counts")
    def outcome(self, job: ClientImport) -> str:
        return ", ".join(f"{name} {job.counts.get(name, 0)}" for name in OUTCOMES)

    @admin.display(description="report (refused rows)")
    def report_table(self, job: ClientImport) -> str:
        if not job.report:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((row["line"], row["field"], row["reason"]) for row in job.report),
        )
        return format_html(
            '<table class="import-report"><tr><th>line</th><th>field</th><th>reason</th>'
            "</tr>{}</table>",
            rows,
        )
