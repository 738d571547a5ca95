from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from chatbot.knowledge.models import PairAnswer, QAPair, language_name, languages
from chatbot.review.models import ReviewItem


class AttachForm(forms.Form):
    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = AutocompleteSelect(ReviewItem._meta.get_field("pair"), admin_site)
        self.fields["pair"] = forms.ModelChoiceField(
            queryset=QAPair.objects.filter(is_active=True), label="Q&A pair", widget=widget
        )


class NewPairForm(forms.ModelForm):
    """A new topic with its first answer, in the language the customer wrote (others are added on its page)."""

    answer = forms.CharField(widget=forms.Textarea, help_text=PairAnswer._meta.get_field("text").help_text)
    language = forms.ChoiceField(help_text="The language of this answer.")

    class Meta:
        model = QAPair
        fields = ("question", "answer", "language", "category", "handoff")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(code, language_name(code)) for code in languages()]
        self.fields["language"].choices = choices  # type: ignore[attr-defined]
