from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected by the gate"

    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    is_active = models.BooleanField("active", default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    encoder = models.CharField(max_length=32)
    artifact = models.FileField(upload_to="models/")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the artifact file.")
    threshold = models.FloatField()
    margin = models.FloatField()
    language_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per language, its own {"threshold", "margin"} where its held-out rows allowed one; the other '
        "languages use threshold and margin. Emptied when an operator sets the threshold.",
    )
    n_labels = models.PositiveIntegerField(default=0)
    n_examples = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the data it was trained on.")
    calibration = models.JSONField(
        default=dict, blank=True, help_text="Coverage and precision per threshold on the held-out set."
    )
    pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="When its artifact was deleted (CHATBOT_KEEP_VERSIONS); it cannot serve."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_model")
        ]

    def __str__(self) -> str:
        return f"v{self.pk} ({self.encoder}, {self.get_status_display().lower()})"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        REJECTED = "rejected", "Rejected by the gate"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (nothing changed)"

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command line"
        SCHEDULE = "schedule", "Schedule"
        DEMO = "demo", "Demo set-up"

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    encoder = models.CharField(max_length=32, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0)
    history = models.JSONField(
        default=list, blank=True, help_text="One entry per epoch: losses and validation accuracy."
    )
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the training and held-out data.")
    gate = models.JSONField(default=dict, blank=True, help_text="The candidate against the active model, held-out set.")
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    candidates = models.JSONField(
        default=list,
        blank=True,
        help_text="The recipes tried (automatic choice): held-out figures, time, which was chosen and why.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Training run {self.pk} ({self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status not in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
