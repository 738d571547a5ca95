import secrets

from django.conf import settings
from django.db import models


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Conversation(models.Model):
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    language = models.CharField(max_length=8, blank=True)
    handed_off = models.BooleanField(default=False, db_index=True)
    # The shop website whose widget started it (chatbot.sites); null on the product's own chat page.
    site = models.ForeignKey(
        "shop_sites.Site", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )

    class Owner(models.TextChoices):
        BOT = "bot", "The bot"
        QUEUE = "queue", "Waiting for a person"
        OPERATOR = "operator", "A person"

    # Who answers the customer's next message. Changed only by chatbot.console.services, under a row lock.
    owner = models.CharField(max_length=16, choices=Owner.choices, default=Owner.BOT, db_index=True)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Conversation {self.pk} ({self.started_at:%Y-%m-%d %H:%M})"


class Message(models.Model):
    class Sender(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        BOT = "bot", "Bot"
        OPERATOR = "operator", "Operator"

    class Outcome(models.TextChoices):
        ANSWER = "answer", "Answered"
        UNSURE = "unsure", "Not sure (suggestions)"
        HANDOFF = "handoff", "Handed to a person"

    # Indexed with its time (Meta.indexes): a conversation's messages are always read newest or oldest first.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    # Not indexed: two or three values, so an index on it only misled the planner (a bitmap of every bot message
    # ANDed into a one-conversation query; the serving section of BENCHMARKS.md) and cost every INSERT.
    sender = models.CharField(max_length=16, choices=Sender.choices)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Customer messages: the browser's id, so a re-sent message is stored once.
    client_id = models.CharField(max_length=100, blank=True)
    suggested_pair = models.ForeignKey(
        "knowledge.QAPair",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The suggestion the customer clicked, if any.",
    )
    # Bot messages: the evidence behind the answer.
    reply_to = models.OneToOneField("self", null=True, blank=True, on_delete=models.CASCADE, related_name="reply")
    pair = models.ForeignKey(
        "knowledge.QAPair", null=True, blank=True, on_delete=models.SET_NULL, related_name="answers"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)  # not indexed: see `sender`
    confidence = models.FloatField(null=True, blank=True)
    candidates = models.JSONField(default=list, blank=True, help_text="The model's top candidates with scores.")
    suggestions = models.JSONField(default=list, blank=True, help_text="Questions offered when not sure.")
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    latency_ms = models.FloatField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    helpful = models.BooleanField(null=True, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True)
    # People in the loop: who wrote an operator message; a customer message stored while a person held the
    # conversation (or it waited for one) is the person's to answer, never the bot's.
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    for_person = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at", "id"], name="message_conversation_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~models.Q(client_id=""),
                name="unique_client_id_per_conversation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_sender_display()}: {self.text[:60]}"
