from django.conf import settings
from django.db import models


class ReviewItem(models.Model):
    """A logged customer message that may need a human label, with why, and what the operator decided.

    Only messages an operator decided on ever become training data.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "To review"
        ATTACHED = "attached", "Attached to a pair"
        NEW_PAIR = "new_pair", "New pair created"
        OUT_OF_SCOPE = "out_of_scope", "Out of scope"
        IGNORED = "ignored", "Ignored"

    message = models.OneToOneField("conversations.Message", on_delete=models.CASCADE, related_name="review")
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
    pair = models.ForeignKey("knowledge.QAPair", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "message to review"
        verbose_name_plural = "review queue"
        ordering = ["-priority", "-message_id"]

    def __str__(self) -> str:
        return self.message.text[:80]
