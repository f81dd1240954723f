"""The bulk client import's tables (api/services/client_import): one row per import, which
records how far it got, and the uploaded file kept as parts until the import is done.

Defined here and imported by api/models.py, so the app registry finds them under `api`."""

from __future__ import annotations

from django.db import models


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # stored, waiting for a worker
    RUNNING = "running", "Running"  # a worker has it (or had it and died: resumable)
    DONE = "done", "Done"
    FAILED = "failed", "Failed"  # a file-level refusal (no header, missing column)


class ImportMode(models.TextChoices):
    UPSERT = "upsert", "Create, update or restore by phone"
    CREATE_ONLY = "create-only", "Create only (an existing phone is reported)"


class ClientImport(models.Model):
    source = models.CharField(max_length=16)  # csv, json, command, admin
    mode = models.CharField(max_length=16, choices=ImportMode.choices, default=ImportMode.UPSERT)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    chunk_rows = models.PositiveIntegerField()
    # The last line of the committed chunks' unbroken prefix (the chunks themselves are
    # recorded in ClientImportChunk, each with its own transaction).
    committed_line = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(null=True, blank=True)  # from the line count
    counts = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=list, blank=True)  # capped; the counts are exact
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"client import {self.pk} ({self.status})"


class ClientImportChunk(models.Model):
    """One committed chunk of an import, written in the chunk's own transaction: these rows are
    exactly what is applied (two writers may commit chunks out of order; a resume skips these
    and rebuilds the import's counts and report from them)."""

    client_import = models.ForeignKey(ClientImport, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    last_line = models.BigIntegerField()
    rows_read = models.PositiveIntegerField()
    counts = models.JSONField(default=dict)
    notes = models.JSONField(default=list)  # [line, field, reason], capped like the report

    class Meta:
        ordering = ["client_import", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_import", "number"], name="client_import_chunk_unique"
            )
        ]

    def __str__(self) -> str:
        return f"chunk {self.number} of import {self.client_import_id}"


class ClientImportPart(models.Model):
    """One piece of an uploaded file, in order; deleted with the import's last chunk."""

    client_import = models.ForeignKey(ClientImport, on_delete=models.CASCADE, related_name="parts")
    number = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["client_import", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_import", "number"], name="client_import_part_unique"
            )
        ]

    def __str__(self) -> str:
        return f"part {self.number} of import {self.client_import_id}"
