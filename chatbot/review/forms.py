from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from chatbot.knowledge.models import Language, QAPair
from chatbot.review.models import ReviewItem


class AttachForm(forms.Form):
    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = AutocompleteSelect(ReviewItem._meta.get_field("pair"), admin_site)
        self.fields["pair"] = forms.ModelChoiceField(
            queryset=QAPair.objects.filter(is_active=True), label="Q&A pair", widget=widget
        )


class NewPairForm(forms.ModelForm):
    class Meta:
        model = QAPair
        fields = ("question", "answer", "language", "category", "handoff")
        widgets = {"language": forms.Select(choices=Language.choices)}
