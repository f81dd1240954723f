from django.contrib import admin

from api.models import Client
from api.phones import mask_phone


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
