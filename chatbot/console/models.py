"""People in the loop: hand-offs to operators, their notes, left messages (tickets) and business hours."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Handoff(models.Model):
    """One request for a person in a conversation, from the request to its end: the record behind the metrics."""

    class Reason(models.TextChoices):
        ASKED = "asked", "Asked (a hand-off pair was answered)"
        BUTTON = "button", "Talk to a person"
        UNSURE = "unsure", "Not-sure streak"
        THUMBS_DOWN = "thumbs_down", "Thumbs down, then not sure"

    class Outcome(models.TextChoices):
        WAITING = "waiting", "Waiting"
        WITH_PERSON = "with_person", "With a person"
        RESOLVED = "resolved", "Resolved by a person"
        UNAVAILABLE = "unavailable", "Nobody available"
        LEFT_MESSAGE = "left_message", "Left a message"
        ABANDONED = "abandoned", "Abandoned while waiting"

    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="handoffs")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, db_index=True)
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_to = models.CharField(max_length=8, blank=True, help_text="bot: handed back; closed: conversation closed.")
    operators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="handoffs")
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    rating_comment = models.TextField(blank=True)
    rated_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ratings"
    )

    class Meta:
        ordering = ["-requested_at"]
        permissions = [("use_console", "Can take conversations in the operator console")]

    def __str__(self) -> str:
        return f"Hand-off {self.pk} of conversation {self.conversation_id} ({self.get_outcome_display()})"


class Note(models.Model):
    """Staff-only words about a conversation: never sent to the customer."""

    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note on conversation {self.conversation_id}"


class Ticket(models.Model):
    """A message left when nobody could take the conversation. The contact is kept in its own field (never in
    message text, never logged) and deleted with the conversation."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="tickets")
    contact = models.CharField(max_length=254)
    text = models.TextField()
    language = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["status", "-created_at"]

    def __str__(self) -> str:
        return f"Ticket {self.pk} ({self.get_status_display()})"


def _zone_valid(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use a name such as Europe/Paris or Asia/Shanghai.")


class Schedule(models.Model):
    """When people answer. With no active schedule, or one without periods, people are always in hours."""

    name = models.CharField(max_length=100, default="Support hours")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[_zone_valid])
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "business hours"
        verbose_name_plural = "business hours"

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"


class OpeningPeriod(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="periods")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["weekday", "opens"]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    def clean(self) -> None:
        if self.closes <= self.opens:
            raise ValidationError("A period closes after it opens (split one that runs past midnight in two).")
