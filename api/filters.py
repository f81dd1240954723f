import django_filters

from .models import Client, Message, MessageStatus


class MessageFilter(django_filters.FilterSet):
    campaign = django_filters.NumberFilter(field_name="run__campaign_id")
    run = django_filters.NumberFilter(field_name="run_id")
    client = django_filters.NumberFilter(field_name="client_id")
    status = django_filters.ChoiceFilter(choices=MessageStatus.choices)

    class Meta:
        model = Message
        fields = ["campaign", "run", "client", "status"]


class ClientFilter(django_filters.FilterSet):
    class Meta:
        model = Client
        fields = ["tag", "mobile_operator_code", "timezone", "phone_number"]
