from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from chatbot.console.models import Handoff, OpeningPeriod, Schedule, Ticket


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
