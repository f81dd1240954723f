from datetime import timedelta

import factory
from django.utils import timezone

from api.models import Campaign, Client


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    phone_number = factory.Sequence(lambda n: f"7999{n:07d}")
    mobile_operator_code = "900"
    tag = "vip"
    timezone = "UTC"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    text_message = "Hello"
    start_datetime = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))
    end_datetime = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    tag = "vip"
