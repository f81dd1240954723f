from django.contrib import admin, messages

from api.models import Client
from api.phones import mask_phone
from api.services.opt_out import set_opted_out


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "masked_phone",
        "mobile_operator_code",
        "tag",
        "timezone",
        "opted_out",
        "deleted_at",
    )
    list_filter = ("opted_out", "mobile_operator_code", "tag", "timezone")
    search_fields = ("phone_number", "tag")
    # The opt-out flag is written by one service (it stamps the time and cancels unsent
    # messages): the actions below call it, the form does not edit it.
    readonly_fields = ("opted_out", "opted_out_at", "created_at", "updated_at", "deleted_at")
    actions = ("opt_out", "opt_back_in")

    def get_queryset(self, request):
        return Client.all_objects.all()

    @admin.display(description="phone")
    def masked_phone(self, obj):
        return mask_phone(obj.phone_number)

    @admin.action(description="Opt the selected clients out (cancels their unsent messages)")
    def opt_out(self, request, queryset):
        self._set(request, queryset, opted_out=True)

    @admin.action(description="Opt the selected clients back in")
    def opt_back_in(self, request, queryset):
        self._set(request, queryset, opted_out=False)

    def _set(self, request, queryset, *, opted_out: bool) -> None:
        result = set_opted_out(
            client_ids=list(queryset.values_list("pk", flat=True)), opted_out=opted_out
        )
        self.message_user(request, f"{result.changed} client(s) changed.", messages.SUCCESS)
