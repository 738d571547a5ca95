"""Closed days' figure counts, so that a 30-day page reads a few thousand rows instead of every message."""

from django.db import models


class RolledDay(models.Model):
    """A closed day whose counts are in DayTotal. `computed_at` is when the task last read that day, or
    last checked that no feedback on its messages arrived since: later feedback makes the page read it live."""

    day = models.DateField(unique=True)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.day}"


class DayTotal(models.Model):
    """One figure's counts for one key (a pair, a bucket, a group of questions...) on one closed day, among the
    conversations of one language and one site. Typed columns, each figure using the ones its tally names
    (chatbot.dashboard.tallies): `n` is what it counts (messages, replies, answers...)."""

    rolled = models.ForeignKey(RolledDay, on_delete=models.CASCADE, related_name="totals")
    day = models.DateField()
    language = models.CharField(max_length=8, blank=True)
    # The conversations' site (chatbot.sites) when it was counted; null: the product's own chat page. Not a
    # foreign key: a deleted site's conversations stay in the counts of all sites, as they do in the messages.
    site = models.PositiveBigIntegerField(null=True, blank=True)
    figure = models.CharField(max_length=20)
    key = models.TextField(blank=True)
    n = models.IntegerField(default=0)
    conversations = models.IntegerField(default=0)
    answered = models.IntegerField(default=0)
    unsure = models.IntegerField(default=0)
    handoff = models.IntegerField(default=0)
    liked = models.IntegerField(default=0)
    disliked = models.IntegerField(default=0)
    rated = models.IntegerField(default=0)
    first = models.DateTimeField(null=True, blank=True)
    last = models.DateTimeField(null=True, blank=True)
    question = models.TextField(blank=True)  # the first (in code point order) of an unanswered group's questions

    # Index: `dashboard_total_keys` (migration 0004), per figure and day in key order, carrying language, site
    # and n on PostgreSQL so that the latency and confidence counts are read from the index alone.

    def __str__(self) -> str:
        return f"{self.day} {self.language} {self.site or ''} {self.figure} {self.key}"
