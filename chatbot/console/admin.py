from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from chatbot.console.models import Handoff, OpeningPeriod, Schedule, SuggestedPair, Ticket
from chatbot.console.suggestions import suggestion_accept, suggestion_attach, suggestion_dismiss
from chatbot.review.forms import AttachForm, NewPairForm


def _transcript(conversation_id: int) -> str:
    url = reverse("admin:conversations_conversation_change", args=[conversation_id])
    return format_html('<a href="{}">#{}</a>', url, conversation_id)


class OpeningPeriodInline(admin.TabularInline):
    model = OpeningPeriod
    extra = 0


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "is_active")
    inlines = [OpeningPeriodInline]


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Handoff)
class HandoffAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "pk",
        "transcript",
        "reason",
        "outcome",
        "requested_at",
        "claimed_at",
        "first_response_at",
        "ended_at",
        "rating",
        "rated_operator",
    )
    list_filter = ("outcome", "reason", "rating", "requested_at")
    list_select_related = ("rated_operator",)
    date_hierarchy = "requested_at"

    @admin.display(description="conversation")
    def transcript(self, handoff: Handoff) -> str:
        return _transcript(handoff.conversation_id)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("pk", "status", "created_at", "language", "text_short", "transcript", "done_by")
    list_filter = ("status", "language", "created_at")
    readonly_fields = ("conversation", "contact", "text", "language", "created_at", "done_by", "done_at")
    fields = ("status", *readonly_fields)

    @admin.display(description="message")
    def text_short(self, ticket: Ticket) -> str:
        return ticket.text if len(ticket.text) <= 80 else ticket.text[:77] + "..."

    @admin.display(description="conversation")
    def transcript(self, ticket: Ticket) -> str:
        return _transcript(ticket.conversation_id)


@admin.register(SuggestedPair)
class SuggestedPairAdmin(admin.ModelAdmin):
    """Review of operators' answers: accept as a new pair (editable first), attach, or dismiss."""

    list_display = ("question", "answer", "language", "status", "transcript", "created_at")
    list_filter = ("status", "language")
    search_fields = ("question", "answer")
    actions = ["accept", "attach", "dismiss"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description="conversation")
    def transcript(self, item: SuggestedPair) -> str:
        return _transcript(item.answer_message.conversation_id)

    def _intermediate(self, request: HttpRequest, queryset: QuerySet, action: str, title: str, form: Any) -> Any:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "items": queryset,
            "form": form,
            "action": action,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/console/suggestedpair/decide.html", context)

    @admin.action(description="Accept as a new Q&A pair (edit first)", permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet) -> Any:
        first = queryset.order_by("pk").first()
        initial = {"question": first.question, "answer": first.answer, "language": first.language} if first else {}
        form = NewPairForm(request.POST if "apply" in request.POST else None, initial=initial)
        if "apply" in request.POST and form.is_valid():
            data = form.cleaned_data
            pair = suggestion_accept(
                items=list(queryset),
                question=data["question"],
                answer=data["answer"],
                language=data["language"],
                category=data["category"],
                user=request.user,
            )
            self.message_user(request, f"Pair “{pair}” created; learned at the next training.")
            return None
        return self._intermediate(request, queryset, "accept", "Accept as a new Q&A pair", form)

    @admin.action(description="Attach the questions to a Q&A pair", permissions=["change"])
    def attach(self, request: HttpRequest, queryset: QuerySet) -> Any:
        form = AttachForm(request.POST if "apply" in request.POST else None, admin_site=self.admin_site)
        if "apply" in request.POST and form.is_valid():
            count = suggestion_attach(items=list(queryset), pair=form.cleaned_data["pair"], user=request.user)
            self.message_user(request, f"{count} question(s) attached; learned at the next training.")
            return None
        return self._intermediate(request, queryset, "attach", "Attach to a Q&A pair", form)

    @admin.action(description="Dismiss (teaches nothing)", permissions=["change"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{suggestion_dismiss(items=list(queryset), user=request.user)} dismissed.")
