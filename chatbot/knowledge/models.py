from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    CHINESE = "zh", "Chinese"


def languages() -> list[str]:
    """The languages the shop answers in (CHATBOT_LANGUAGES), in order of preference for a fallback."""
    return list(settings.CHATBOT_LANGUAGES)


def language_name(code: str) -> str:
    return dict(Language.choices).get(code, code)


class PairManager(models.Manager["QAPair"]):
    def create_topic(self, *, question: str, answers: dict[str, str], **fields: Any) -> "QAPair":
        """A pair with its answers, {language: text}."""
        pair = self.create(question=question, **fields)
        PairAnswer.objects.bulk_create(
            PairAnswer(pair=pair, language=code, text=text) for code, text in answers.items()
        )
        return pair


class QAPair(models.Model):
    """One topic, the unit the model picks: its main question, its answer in each language the shop serves
    (PairAnswer), alternate questions in any language and follow-ups.

    A pair merged into another stays as an inactive redirect (`merged_into`): a model trained before the merge
    still predicts its id, and the reply is the survivor's until the next training."""

    question = models.CharField(max_length=500, unique=True)
    category = models.CharField(max_length=64, blank=True, db_index=True)
    handoff = models.BooleanField(default=False, help_text="Answering with this pair offers the customer a person.")
    is_active = models.BooleanField("active", default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_from",
        help_text="Merged into this pair: inactive, and the bot answers with that pair instead.",
    )
    followups: "models.ManyToManyField[QAPair, FollowUp]" = models.ManyToManyField(
        "self",
        through="FollowUp",
        through_fields=("pair", "followup"),
        symmetrical=False,
        related_name="followed_by",
        blank=True,
        help_text="Questions offered as buttons after this answer, in order.",
    )

    objects = PairManager()

    class Meta:
        verbose_name = "Q&A pair"
        ordering = ["category", "question"]

    def __str__(self) -> str:
        return self.question

    def answer_texts(self) -> dict[str, str]:
        """{language: answer}; prefetch `translations` when reading many pairs."""
        return {answer.language: answer.text for answer in self.translations.all()}


class PairAnswer(models.Model):
    """A pair's answer in one language."""

    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=8, choices=Language.choices)
    text = models.TextField(
        "answer", help_text="Plain text; links (<a href>) and <b>, <i>, lists are kept, other HTML is removed."
    )

    class Meta:
        verbose_name = "answer"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["pair", "language"], name="unique_answer_per_language")]

    def __str__(self) -> str:
        return f"{language_name(self.language)} answer"


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
