from datetime import timedelta

import factory
from django.utils import timezone

from api.models import Campaign, CampaignRun, Client, Message, MessageStatus, RunStatus
from api.services.sql import backend


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


class CampaignRunFactory(factory.django.DjangoModelFactory):
    """A run that was planned and is sending (set `status` / `planned_at` for other states)."""

    class Meta:
        model = CampaignRun

    campaign = factory.SubFactory(CampaignFactory, status="running")
    number = factory.Sequence(lambda n: n + 1)
    status = RunStatus.RUNNING
    planned_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    """A message written directly (the run's partition is created first on Postgres)."""

    class Meta:
        model = Message

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        run = kwargs["run"]
        backend().ensure_run_partition(run.pk)  # Postgres: the run's partition
        return super()._create(model_class, *args, **kwargs)

    run = factory.SubFactory(CampaignRunFactory)
    client = factory.SubFactory(ClientFactory)
    status = MessageStatus.PENDING
    planned_send_at = factory.LazyFunction(timezone.now)
    next_attempt_at = factory.SelfAttribute("planned_send_at")
    created_at = factory.LazyFunction(timezone.now)
    sent_at = factory.LazyAttribute(
        lambda m: m.planned_send_at if m.status == MessageStatus.SENT else None
    )
