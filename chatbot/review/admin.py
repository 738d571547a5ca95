from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from chatbot.knowledge.text import detect_language
from chatbot.review.forms import AttachForm, NewPairForm
from chatbot.review.models import ReviewItem
from chatbot.review.services import (
    review_attach,
    review_ignore,
    review_new_pair,
    review_out_of_scope,
    review_queue_refresh,
)

REASONS = {
    "negative_feedback": "thumbs down",
    "no_answer": "no answer",
    "low_confidence": "low confidence",
    "near_tie": "near tie",
}


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*REASONS.items(), ("asked_often", "asked often (3+ similar)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        reason = self.value()
        if reason == "asked_often":
            return queryset.filter(cluster_size__gte=3)
        if reason is not None and reason in REASONS:
            return queryset.filter(**{reason: True})
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """To review by default, so that the queue empties as the operator works."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*ReviewItem.Status.choices, ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        value = self.value() or ReviewItem.Status.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or ReviewItem.Status.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = (
        "message_text",
        "operator_reply",
        "reasons",
        "priority",
        "confidence_display",
        "candidates",
        "cluster_link",
        "transcript",
        "asked_at",
        "status",
    )
    list_filter = (StatusFilter, "kind", ReasonFilter)
    search_fields = ("message__text", "question", "operator_answer__text")
    list_select_related = ("message__reply", "message__conversation", "operator_answer__operator", "pair")
    actions = ["attach_to_pair", "create_pair", "mark_out_of_scope", "ignore"]
    list_per_page = 50

    class Media:
        css = {"all": ["admin-extra/learning.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(needs_review=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method == "GET":  # the page shows what a worker stored; this asks it for the newest
            review_queue_refresh()
        return super().changelist_view(request, extra_context)

    @admin.display(description="message", ordering="message__text")
    def message_text(self, item: ReviewItem) -> str:
        return item.text

    @admin.display(description="a person's answer")
    def operator_reply(self, item: ReviewItem) -> str:
        answer = item.operator_answer
        if answer is None:
            return ""
        name = answer.operator.get_full_name() or answer.operator.get_username() if answer.operator else ""
        return format_html('{} <small class="review-reason">{}</small>', answer.text, name)

    @admin.display(description="why")
    def reasons(self, item: ReviewItem) -> str:
        names = [label for field, label in REASONS.items() if getattr(item, field)]
        if item.kind == ReviewItem.Kind.SUGGESTED:
            names.insert(0, "suggested pair")
        if item.cluster_size >= 3:
            names.append(f"asked {item.cluster_size}×")
        return format_html_join(" ", '<span class="review-reason">{}</span>', ((name,) for name in names))

    @admin.display(description="confidence", ordering="confidence")
    def confidence_display(self, item: ReviewItem) -> str:
        return "" if item.confidence is None else f"{item.confidence:.2f}"

    @admin.display(description="model's top candidates")
    def candidates(self, item: ReviewItem) -> str:
        reply = getattr(item.message, "reply", None)
        ranked = (reply.candidates if reply else [])[:3]
        items = format_html_join("", "<li>{} <small>({})</small></li>", ((c["question"], c["score"]) for c in ranked))
        return format_html('<ol class="review-candidates">{}</ol>', items) if ranked else "-"

    @admin.display(description="similar", ordering="cluster_size")
    def cluster_link(self, item: ReviewItem) -> str:
        if item.cluster is None:
            return ""
        url = reverse("admin:review_reviewitem_changelist") + f"?cluster={item.cluster}"
        return format_html(
            '<a href="{}" title="select the whole group">group {} ({})</a>', url, item.cluster, item.cluster_size
        )

    @admin.display(description="conversation")
    def transcript(self, item: ReviewItem) -> str:
        url = reverse("admin:conversations_conversation_change", args=[item.message.conversation_id])
        return format_html('<a href="{}">#{}</a>', url, item.message.conversation_id)

    @admin.display(description="asked", ordering="message__created_at")
    def asked_at(self, item: ReviewItem) -> Any:
        return item.message.created_at

    def _intermediate(
        self, request: HttpRequest, queryset: QuerySet, action: str, title: str, form: Any
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "items": queryset.select_related("message", "operator_answer"),
            "form": form,
            "action": action,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/review/reviewitem/decide.html", context)

    @admin.action(description="Attach to a Q&A pair as alternate questions", permissions=["change"])
    def attach_to_pair(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = AttachForm(
            request.POST if "apply" in request.POST else None,
            admin_site=self.admin_site,
            initial={"pair": _most_likely_pair(queryset)},
        )
        if "apply" in request.POST and form.is_valid():
            count = review_attach(
                items=list(queryset.select_related("message")), pair=form.cleaned_data["pair"], user=request.user
            )
            self.message_user(
                request, f"{count} message(s) attached to “{form.cleaned_data['pair']}”; learned at the next training."
            )
            return None
        return self._intermediate(request, queryset, "attach_to_pair", "Attach to a Q&A pair", form)

    @admin.action(description="Create a new Q&A pair (accepts a suggested pair; edit first)", permissions=["change"])
    def create_pair(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = NewPairForm(request.POST if "apply" in request.POST else None, initial=_new_pair_initial(queryset))
        if "apply" in request.POST and form.is_valid():
            data = form.cleaned_data
            pair = review_new_pair(
                items=list(queryset.select_related("message")),
                question=data["question"],
                answer=data["answer"],
                language=data["language"],
                category=data["category"],
                user=request.user,
            )
            self.message_user(
                request, f"Pair “{pair}” created with {queryset.count()} message(s); learned at the next training."
            )
            return None
        return self._intermediate(request, queryset, "create_pair", "Create a Q&A pair", form)

    @admin.action(description="Mark as out of scope", permissions=["change"])
    def mark_out_of_scope(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = review_out_of_scope(items=list(queryset.select_related("message")), user=request.user)
        self.message_user(request, f"{count} message(s) marked out of scope.")

    @admin.action(description="Ignore or dismiss (teaches nothing)", permissions=["change"])
    def ignore(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = review_ignore(items=list(queryset), user=request.user)
        self.message_user(request, f"{count} message(s) ignored.", messages.INFO)


def _new_pair_initial(queryset: QuerySet) -> dict[str, str]:
    """The first message's words; with a person's answer to start from when the group has one."""
    items = list(queryset.select_related("message", "operator_answer").order_by("message_id"))
    if not items:
        return {}
    suggested = next((item for item in items if item.operator_answer is not None), None)
    first = suggested or items[0]
    text = " ".join(first.text.split())[:500]
    initial = {"question": text, "language": detect_language(text)}
    if suggested is not None and suggested.operator_answer is not None:
        initial["answer"] = suggested.operator_answer.text
    return initial


def _most_likely_pair(queryset: QuerySet) -> int | None:
    """The pair the model most often put first for these messages: the usual choice."""
    tops: Counter[int] = Counter()
    for item in queryset.select_related("message__reply"):
        reply = getattr(item.message, "reply", None)
        if reply and reply.candidates:
            tops[reply.candidates[0]["pair"]] += 1
    return tops.most_common(1)[0][0] if tops else None
