"""The dashboard's period: today, the last 7 or 30 days, or a custom range of whole days."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.utils import timezone

from chatbot.knowledge.models import Language
from chatbot.sites.models import Site

MAX_DAYS = 366
PRESETS = {"today": 1, "7d": 7, "30d": 30}


@dataclass(frozen=True)
class Period:
    first: dt.date
    last: dt.date  # inclusive
    language: str = ""
    site: int | None = None  # a widget's site (chatbot.sites); None: every conversation
    notes: tuple[str, ...] = field(default=())

    @property
    def start(self) -> dt.datetime:
        return midnight(self.first)

    @property
    def end(self) -> dt.datetime:
        return midnight(self.last + dt.timedelta(days=1))

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class PeriodForm(forms.Form):
    period = forms.ChoiceField(
        choices=[("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("custom", "Custom")],
        required=False,
    )
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    language = forms.ChoiceField(choices=[("", "All languages"), *Language.choices], required=False)
    site = forms.ModelChoiceField(queryset=Site.objects.all(), required=False, empty_label="All sites")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("period") == "custom":
            if not data.get("start") or not data.get("end"):
                raise forms.ValidationError("A custom period needs a start and an end date.")
            if data["end"] < data["start"]:
                raise forms.ValidationError("The end date is before the start date.")
            if data["start"] > timezone.localdate():
                raise forms.ValidationError("The period starts in the future: there is nothing to show yet.")
            days = (min(data["end"], timezone.localdate()) - data["start"]).days + 1
            if days > MAX_DAYS:
                raise forms.ValidationError(f"A period is at most {MAX_DAYS} days; this one has {days}.")
        return data

    def period_get(self) -> Period:
        """The period asked for; call after is_valid(). A custom end in the future is clamped to today."""
        data, today = self.cleaned_data, timezone.localdate()
        language, site = data.get("language") or "", data["site"].pk if data.get("site") else None
        if data.get("period") != "custom":
            days = PRESETS.get(data.get("period") or "7d", 7)
            return Period(first=today - dt.timedelta(days=days - 1), last=today, language=language, site=site)
        notes: tuple[str, ...] = ()
        if data["end"] > today:
            notes = (f"The period ends in the future; it is shown up to today ({today:%Y-%m-%d}).",)
        last = min(data["end"], today)
        return Period(first=data["start"], last=last, language=language, site=site, notes=notes)
