from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    CHINESE = "zh", "Chinese"


class QAPair(models.Model):
    """A curated answer and the question it answers; the unit the model picks."""

    question = models.CharField(max_length=500, unique=True)
    answer = models.TextField(
        help_text="Plain text; links (<a href>) and <b>, <i>, lists are kept, other HTML is removed."
    )
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.ENGLISH, db_index=True)
    category = models.CharField(max_length=64, blank=True, db_index=True)
    handoff = models.BooleanField(default=False, help_text="Answering with this pair offers the customer a person.")
    is_active = models.BooleanField("active", default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    followups: "models.ManyToManyField[QAPair, FollowUp]" = models.ManyToManyField(
        "self",
        through="FollowUp",
        through_fields=("pair", "followup"),
        symmetrical=False,
        related_name="followed_by",
        blank=True,
        help_text="Questions offered as buttons after this answer, in order.",
    )

    class Meta:
        verbose_name = "Q&A pair"
        ordering = ["category", "question"]

    def __str__(self) -> str:
        return self.question


class FromMessage(models.Model):
    """A row an operator made from a customer's message in the review queue: deleted with that message (its
    conversation), unless an operator chose to keep it as curated (then who and when are recorded)."""

    source_message = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The customer message it was made from; deleting that conversation deletes this row.",
    )
    kept_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kept_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class AlternateQuestion(FromMessage):
    class Source(models.TextChoices):
        CURATED = "curated", "Curated"
        LOG = "log", "From a customer message"

    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="alternates")
    text = models.CharField(max_length=500)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CURATED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "text"], name="unique_alternate_per_pair")]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text


class FollowUp(models.Model):
    """One ordered follow-up of a pair: after answering `pair`, the chat offers `followup` as a button.
    Cycles (A -> B -> A) are fine, since each is one click by the customer; a pair never follows itself."""

    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="followup_links")
    followup = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="+", verbose_name="follow-up")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "follow-up question"
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "followup"], name="unique_followup_per_pair"),
            models.CheckConstraint(condition=~models.Q(pair=models.F("followup")), name="followup_not_itself"),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} -> {self.followup_id}"

    def clean(self) -> None:
        if self.pair_id and self.pair_id == self.followup_id:
            raise ValidationError({"followup": "A pair cannot be its own follow-up."})


class OutOfScopeExample(FromMessage):
    """A question the shop does not answer: teaches the model when to say it is not sure."""

    class Source(models.TextChoices):
        CURATED = "curated", "Curated"
        LOG = "log", "From a customer message"

    text = models.CharField(max_length=500, unique=True)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.ENGLISH, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CURATED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "out-of-scope example"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text
