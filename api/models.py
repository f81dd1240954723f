"""Clients, campaigns, their runs and the messages each run plans.

(One module past ~250 lines on purpose: Django's app registry and the migrations name these
models by `api.models`; the rules live in api/domain, the ids in api/message_ids.)

The message table is the schedule: a pending row with `next_attempt_at <= now` is due, and the
dispatcher claims due rows in batches. Its foreign keys are kept by the application, not by the
database (`db_constraint=False`): measured on Postgres 15, FK checks triple the cost of planning
a million rows (~3 s -> ~11 s). Integrity holds because clients are never hard-deleted while
they have messages (soft delete) and runs are never deleted at all (PROTECT at the ORM level).

A message's id is derived, not drawn from a sequence: `run_id * 2**32 + client_id`
(`message_id()`). The primary key therefore also enforces one message per (run, client), a
run's messages are one contiguous id range (`run_message_ids()`), and on Postgres the table is
partitioned by that range: one partition per run, loaded by planning before its indexes are
built (api/partitions.py).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

from .domain.campaigns import CAMPAIGN_FIELDS, TEXT_MAX_LENGTH, validate_campaign_row
from .domain.clients import (
    OPERATOR_CODE_MESSAGE,
    OPERATOR_CODE_RE,
    PHONE_MESSAGE,
    PHONE_RE,
    TAG_MAX_LENGTH,
    check_timezone,
    ensure_phone_free,
)
from .domain.errors import refusals_as
from .message_ids import MESSAGE_ID_RUN_STRIDE, message_id
from .phones import mask_phone

# The domain's rules (api/domain/) as Django validators: the admin's forms (full_clean) and the
# API's fields refuse what the services refuse, with the same messages.
phone_validator = RegexValidator(PHONE_RE, PHONE_MESSAGE)
operator_code_validator = RegexValidator(OPERATOR_CODE_RE, OPERATOR_CODE_MESSAGE)


def validate_timezone(value: str) -> None:  # named by migration 0001: keep it here
    with refusals_as(ValidationError, field_level=True):
        check_timezone(value)


class ActiveClientManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Client(models.Model):
    phone_number = models.CharField(max_length=11, validators=[phone_validator])
    mobile_operator_code = models.CharField(max_length=3, validators=[operator_code_validator])
    tag = models.CharField(max_length=TAG_MAX_LENGTH, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Soft delete: a deleted client leaves every audience but keeps its message history.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Opted out (an inbound STOP): in no audience, and not sent at send time either. Set only
    # through api.services.opt_out.set_opted_out. db_default: raw bulk inserts may omit it.
    opted_out = models.BooleanField(default=False, db_default=False, editable=False)
    opted_out_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ActiveClientManager()
    all_objects = models.Manager()  # noqa: DJ012 - both managers belong together

    class Meta:
        base_manager_name = "all_objects"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=Q(deleted_at__isnull=True),
                name="client_phone_unique_active",
            ),
        ]
        indexes = [
            # A bulk import restores a soft-deleted client by phone (the unique index holds
            # active clients only); deleted rows are few, so this index is small.
            models.Index(
                fields=["phone_number"],
                condition=Q(deleted_at__isnull=False),
                name="client_deleted_phone_idx",
            ),
            models.Index(fields=["tag"], name="client_tag_idx"),
            models.Index(fields=["mobile_operator_code"], name="client_operator_idx"),
            # The distinct zones in a few index probes (planning computes one time per zone).
            models.Index(fields=["timezone"], name="client_timezone_idx"),
            # The few opted-out clients, so counting an audience's costs O(opted out).
            models.Index(fields=["id"], condition=Q(opted_out=True), name="client_opted_out_idx"),
        ]

    def __str__(self) -> str:
        return f"client {self.pk} {mask_phone(self.phone_number)}"

    def validate_constraints(self, exclude=None):
        # The partial unique index's own message names no field: the domain's names the phone.
        # Not when the phone already failed its own checks (the form then excludes it).
        if self.deleted_at is None and "phone_number" not in (exclude or ()):
            with refusals_as(ValidationError):
                ensure_phone_free(self.phone_number, client_id=self.pk)
        super().validate_constraints(exclude=exclude)


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


# Campaign status groups (spelled once; services, sweep and admin use these).
ACTIVE_CAMPAIGN_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED)
CLOSED_CAMPAIGN_STATUSES = (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)
# Started at least once: a start needs force_resend to send again.
STARTED_CAMPAIGN_STATUSES = ACTIVE_CAMPAIGN_STATUSES + CLOSED_CAMPAIGN_STATUSES


class Campaign(models.Model):
    text_message = models.TextField(max_length=TEXT_MAX_LENGTH)
    start_datetime = models.DateTimeField()
    end_datetime = models.DateTimeField()
    time_interval_start = models.TimeField(null=True, blank=True)
    time_interval_end = models.TimeField(null=True, blank=True)
    tag = models.CharField(max_length=TAG_MAX_LENGTH, blank=True, default="")
    client_filter = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_datetime__lt=F("end_datetime")),
                name="campaign_start_before_end",
            ),
            models.CheckConstraint(
                condition=Q(time_interval_start__isnull=True, time_interval_end__isnull=True)
                | Q(time_interval_start__isnull=False, time_interval_end__isnull=False),
                name="campaign_window_both_or_neither",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return f"campaign {self.pk} ({self.status})"

    def clean(self):
        # A missing date already has its own error (the field is required, or was refused).
        if self.start_datetime is None or self.end_datetime is None:
            return
        with refusals_as(ValidationError):
            validate_campaign_row(self, changed=self._changed_fields())

    def _changed_fields(self) -> list[str]:
        """The fields this save sets: all for a new campaign, else those that differ from
        the stored row (an old end left as it is need not be in the future)."""
        if self._state.adding:
            return list(CAMPAIGN_FIELDS)
        stored = Campaign.objects.filter(pk=self.pk).values(*CAMPAIGN_FIELDS).first()
        if stored is None:
            return list(CAMPAIGN_FIELDS)
        return [name for name in CAMPAIGN_FIELDS if stored[name] != getattr(self, name)]


class RunStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # waiting for the campaign start to be planned
    RUNNING = "running", "Running"  # planned; messages are going out
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


# Run status groups. Active: not over (may still plan or send). Live: planned and not over,
# so its messages may be claimed or leased right now.
ACTIVE_RUN_STATUSES = (RunStatus.SCHEDULED, RunStatus.RUNNING, RunStatus.PAUSED)
LIVE_RUN_STATUSES = (RunStatus.RUNNING, RunStatus.PAUSED)


class CampaignRun(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="runs")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.SCHEDULED)
    force_resend = models.BooleanField(default=False)
    planned_messages = models.PositiveIntegerField(default=0)
    skipped_clients = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # Resend to failed: this run's audience is the clients whose message in `resend_of`
    # ended failed or expired (still in the audience).
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Audience clients left out at planning because they opted out. db_default: code from
    # before this column (a rolling deploy) still inserts runs.
    opted_out_clients = models.PositiveIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "number"], name="run_campaign_number_unique"
            )
        ]
        indexes = [models.Index(fields=["status"], name="run_status_idx")]

    def __str__(self) -> str:
        return f"run {self.pk} of campaign {self.campaign_id} ({self.status})"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    PAUSED = "paused", "Paused"


# Message status groups. Unsent: waiting to be sent (or resumed); open: not settled yet.
UNSENT_MESSAGE_STATUSES = (MessageStatus.PENDING, MessageStatus.PAUSED)
OPEN_MESSAGE_STATUSES = (MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.PAUSED)
# Ended without reaching the client: what "resend to failed" sends again.
RESENDABLE_MESSAGE_STATUSES = (MessageStatus.FAILED, MessageStatus.EXPIRED)


class Message(models.Model):
    # The id is message_id(run, client): see the module docstring.
    id = models.BigIntegerField(primary_key=True, editable=False)
    # db_index=False: the primary key serves both lookups (a run is an id range, a client's
    # message in a run is one id); FK indexes would be two more b-trees to fill per row.
    run = models.ForeignKey(
        CampaignRun,
        on_delete=models.PROTECT,
        related_name="messages",
        db_constraint=False,
        db_index=False,
    )
    client = models.ForeignKey(
        Client,
        on_delete=models.PROTECT,
        related_name="messages",
        db_constraint=False,
        db_index=False,
    )
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    planned_send_at = models.DateTimeField()
    # When the message is next due: planned_send_at at first, later the retry or re-plan time.
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.BigIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            # With the primary key this is the unique (run, client): one message per client
            # per run, whatever inserts it.
            models.CheckConstraint(
                condition=Q(id=F("run_id") * MESSAGE_ID_RUN_STRIDE + F("client_id"))
                & Q(client_id__gte=0, client_id__lt=MESSAGE_ID_RUN_STRIDE),
                name="message_id_is_run_and_client",
            ),
        ]
        # On Postgres each run's partition gets the same indexes (api/partitions.py).
        indexes = [
            # The due sweep walks only pending rows: O(due), not O(table).
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="message_due_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="sending"),
                name="message_lease_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.status})"

    def save(self, *args, **kwargs):
        if self.pk is None:
            self.pk = message_id(self.run_id, self.client_id)
            kwargs.setdefault("force_insert", True)
        super().save(*args, **kwargs)


class RunStatusCount(models.Model):
    """How many of a run's messages are in each status, kept by database triggers on the
    message table in the same transaction as every status change (api/counters.py).

    A run's count for a status is the SUM over its shards: each Postgres backend adds to its
    own shard (its process id), so workers never queue on one hot row; the sweep folds the
    shards into shard 0. SQLite has one writer and uses shard 0 only.
    """

    run = models.ForeignKey(
        CampaignRun, on_delete=models.PROTECT, related_name="status_counts", db_constraint=False
    )
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    shard = models.IntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "status", "shard"], name="run_status_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.status}: {self.count} (shard {self.shard})"


class DailyReportStatus(models.TextChoices):
    SENDING = "sending", "Sending"  # claimed by one task until claimed_until
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # the send raised: a later run claims it again


class DailyReport(models.Model):
    """One row per local day whose report was claimed: the unique day is what keeps two beats
    or a redelivered task from mailing the same day twice (api/services/daily_report/)."""

    day = models.DateField(unique=True)
    status = models.CharField(max_length=16, choices=DailyReportStatus.choices)
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"daily report {self.day} ({self.status})"


class SingleSignOnIdentity(models.Model):
    """The OpenID Connect account (issuer, subject) a Django user signs in with (api/sso/).
    Users are found by this pair, never by e-mail: an e-mail address the provider lets anyone
    claim must not open an existing account."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="single_sign_on_identities",
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="sso_identity_issuer_subject_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject} -> user {self.user_id}"


class RunSentMinute(models.Model):
    """How many of a run's messages were sent in each minute (by `sent_at`), kept by database
    triggers on the message table like RunStatusCount (migration 0012,
    api/services/sent_minutes.py): the console's "sent over time" chart reads these rows,
    never the messages. Sharded per Postgres backend the same way; the sweep folds shards."""

    run = models.ForeignKey(
        CampaignRun,
        on_delete=models.PROTECT,
        related_name="sent_minutes",
        db_constraint=False,
        db_index=False,  # the unique (run, minute, shard) index serves every read
    )
    minute = models.DateTimeField()
    shard = models.IntegerField(default=0)
    sent = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "minute", "shard"], name="run_sent_minute_unique"
            )
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.minute:%Y-%m-%d %H:%M}: {self.sent} sent"


class TestSend(models.Model):
    """One test SMS of a campaign's text to one client (POST /campaigns/<id>/test/): sent at
    once through the provider, kept apart from the runs, their messages and the stats.

    The row id is the gateway's message id: below 2**32, the range no run's message uses
    (those are run_id * 2**32 + client_id with run_id >= 1), so the two never collide.
    """

    __test__ = False  # not a pytest class

    # Kept by the application, not the database (as Message's): a database FK would make every
    # TRUNCATE of the campaign table (benchmarks, fixtures) name this table too.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="test_sends", db_constraint=False
    )
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="test_sends", db_constraint=False
    )
    text = models.TextField()
    outcome = models.CharField(max_length=16, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(id__lt=MESSAGE_ID_RUN_STRIDE), name="test_send_id_below_runs"
            ),
        ]

    def __str__(self) -> str:
        return f"test send {self.pk} of campaign {self.campaign_id} ({self.outcome})"


# The bulk import's tables (kept in their own module; the registry finds them through here).
from .import_models import (  # noqa: E402, F401
    ClientImport,
    ClientImportChunk,
    ClientImportPart,
    ImportMode,
    ImportStatus,
)
