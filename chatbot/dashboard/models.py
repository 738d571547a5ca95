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
    """One figure's counts for one key (a pair, a bucket...) on one closed day, in one conversation language."""

    rolled = models.ForeignKey(RolledDay, on_delete=models.CASCADE, related_name="totals")
    day = models.DateField()
    language = models.CharField(max_length=8, blank=True)
    figure = models.CharField(max_length=20)
    key = models.CharField(max_length=40, blank=True)
    values = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["figure", "day", "language"], name="dashboard_total_figure_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.language} {self.figure} {self.key}"
