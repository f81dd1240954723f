import django_filters
from django import forms

from .message_ids import MESSAGE_ID_RUN_STRIDE, message_id, of_runs
from .models import CampaignRun, Client, Message, MessageStatus

MAX_RUN_ID = 2**31  # beyond it a run's id range leaves bigint
MAX_BIGINT = 2**63


class _PresentIntegerField(forms.IntegerField):
    def clean(self, value):
        if value == "":  # given but empty (absent is None): the schema says integer
            raise forms.ValidationError("A whole number (leave the parameter out for all).")
        return super().clean(value)


class IdFilter(django_filters.NumberFilter):
    """A whole number: `?run=2.9`, `?run=1e0` or `?run=` is a 400 naming the field, not run 2,
    run 1 or every run."""

    field_class = _PresentIntegerField


class MessageFilter(django_filters.FilterSet):
    """Run, campaign and client filters are written as id lookups (a run is an id range, a
    client's message in a run one id), so Postgres reads only the partitions concerned."""

    campaign = IdFilter(method="filter_campaign")
    run = IdFilter(method="filter_run")
    client = IdFilter(method="filter_client")
    status = django_filters.ChoiceFilter(choices=MessageStatus.choices)

    def filter_campaign(self, queryset, name, value):
        campaign_id = int(value)
        if not 0 <= campaign_id < MAX_BIGINT:
            return queryset.none()
        runs = CampaignRun.objects.filter(campaign_id=campaign_id).values_list("id", flat=True)
        return queryset.filter(of_runs(runs))

    def filter_run(self, queryset, name, value):
        run_id = int(value)
        if not 0 <= run_id < MAX_RUN_ID:
            return queryset.none()
        return queryset.filter(of_runs([run_id]), run_id=run_id)

    def filter_client(self, queryset, name, value):
        client_id = int(value)
        if not 0 <= client_id < MESSAGE_ID_RUN_STRIDE:
            return queryset.none()
        runs = CampaignRun.objects.values_list("id", flat=True)
        ids = [message_id(run_id, client_id) for run_id in runs]
        return queryset.filter(pk__any_of=ids, client_id=client_id)

    class Meta:
        model = Message
        fields = ["campaign", "run", "client", "status"]


class _StrictBooleanField(forms.NullBooleanField):
    """true/false (also 1/0): anything else is a 400 naming the parameter, not "no filter"."""

    widget = forms.TextInput

    def to_python(self, value):
        text = str(value).strip().lower() if value is not None else ""
        if text == "":
            return None
        if text not in ("true", "false", "1", "0"):
            raise forms.ValidationError("Must be true or false.")
        return text in ("true", "1")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = _StrictBooleanField


class ClientFilter(django_filters.FilterSet):
    opted_out = StrictBooleanFilter()

    class Meta:
        model = Client
        fields = ["tag", "mobile_operator_code", "timezone", "phone_number", "opted_out"]
