"""Read-only views of the daily report's days and the single sign-on identities: both are
written by their services only (api/services/daily_report/, api/services/single_sign_on.py)."""

from django.contrib import admin

from api.models import DailyReport, SingleSignOnIdentity


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DailyReport)
class DailyReportAdmin(ReadOnlyAdmin):
    list_display = ("day", "status", "attempts", "recipients", "sent_at", "last_error")
    list_filter = ("status",)


@admin.register(SingleSignOnIdentity)
class SingleSignOnIdentityAdmin(ReadOnlyAdmin):
    list_display = ("user", "issuer", "subject", "created_at", "last_login_at")
    search_fields = ("user__username", "subject")
