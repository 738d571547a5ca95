from django.conf import settings
from django.db import models


class ReviewItem(models.Model):
    """A logged customer message that may need a human label, with why, and what the operator decided.

    A *suggested pair* is a customer's question that a person answered in the console: it carries the operator's
    reply (`operator_answer`), to accept as a new pair (edited first), attach to a pair, or dismiss. Only messages
    an operator decided on ever become training data.
    """

    class Kind(models.TextChoices):
        QUESTION = "question", "Customer question"
        SUGGESTED = "suggested", "Suggested pair (an operator's answer)"

    class Status(models.TextChoices):
        PENDING = "pending", "To review"
        ATTACHED = "attached", "Attached to a pair"
        NEW_PAIR = "new_pair", "New pair created"
        OUT_OF_SCOPE = "out_of_scope", "Out of scope"
        IGNORED = "ignored", "Ignored"

    message = models.OneToOneField("conversations.Message", on_delete=models.CASCADE, related_name="review")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.QUESTION, db_index=True)
    question = models.CharField(
        max_length=500, blank=True, help_text="The customer's words answered by the operator (blank: the message)."
    )
    operator_answer = models.OneToOneField(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="suggestion",
        help_text="The operator's reply, for a suggested pair.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    needs_review = models.BooleanField(default=False, db_index=True)
    priority = models.FloatField(default=0.0, db_index=True)
    no_answer = models.BooleanField("no answer", default=False)
    low_confidence = models.BooleanField("low confidence", default=False)
    near_tie = models.BooleanField("near tie", default=False)
    negative_feedback = models.BooleanField("thumbs down", default=False)
    confidence = models.FloatField(null=True, blank=True)
    cluster = models.PositiveBigIntegerField(
        null=True, blank=True, db_index=True, help_text="Id of the first message of its group of similar messages."
    )
    cluster_size = models.PositiveIntegerField(default=1)
    clustered_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the queue last moved it to another group."
    )
    pair = models.ForeignKey("knowledge.QAPair", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "message to review"
        verbose_name_plural = "review queue"
        ordering = ["-priority", "-message_id"]

    def __str__(self) -> str:
        return self.text[:80]

    @property
    def text(self) -> str:
        """The question to label: what the customer asked (all their messages an operator answered at once)."""
        return self.question or self.message.text
