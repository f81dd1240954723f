from django.contrib import admin

from .models import Campaign, CampaignRun, Client, Message, mask_phone


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
    fields = (
        "number",
        "status",
        "planned_messages",
        "skipped_clients",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "tag", "start_datetime", "end_datetime")
    list_filter = ("status",)
    search_fields = ("tag", "text_message")
    readonly_fields = ("status", "created_at", "updated_at")
    inlines = [RunInline]


@admin.register(CampaignRun)
class CampaignRunAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "number", "status", "planned_messages", "skipped_clients")
    list_filter = ("status",)
    readonly_fields = [f.name for f in CampaignRun._meta.fields]

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
