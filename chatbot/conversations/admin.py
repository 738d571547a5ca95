from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from chatbot.conversations.models import Conversation, Message
from chatbot.retention import conversations_erase


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class TranscriptInline(ReadOnlyMixin, admin.TabularInline):
    model = Message
    fk_name = "conversation"
    verbose_name_plural = "transcript"
    fields = ("created_at", "sender", "operator", "text", "outcome", "pair", "confidence_display", "helpful")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="confidence")
    def confidence_display(self, message: Message) -> str:
        return "" if message.confidence is None else f"{message.confidence:.2f}"


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("__str__", "started_at", "last_seen_at", "site", "language", "message_count", "handed_off", "owner")
    list_filter = ("handed_off", "owner", "language", "site", "started_at")
    search_fields = ("messages__text",)
    date_hierarchy = "started_at"
    readonly_fields = ("started_at", "last_seen_at", "site", "language", "handed_off", "owner", "operator")
    exclude = ("token",)
    inlines = [TranscriptInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(n_messages=Count("messages"))

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        conversations_erase(conversations=Conversation.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        conversations_erase(conversations=Conversation.objects.filter(pk__in=queryset.values("pk")))

    @admin.display(description="messages", ordering="n_messages")
    def message_count(self, conversation: Conversation) -> int:
        return conversation.n_messages  # type: ignore[attr-defined]


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "text_short",
        "sender",
        "outcome",
        "pair",
        "confidence_display",
        "helpful",
        "model_version",
        "latency",
        "created_at",
        "conversation_link",
    )
    list_filter = ("sender", "outcome", "helpful", "model_version", "created_at")
    search_fields = ("text",)
    list_select_related = ("pair", "model_version", "conversation")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Message._meta.fields]

    @admin.display(description="text")
    def text_short(self, message: Message) -> str:
        return message.text if len(message.text) <= 80 else message.text[:77] + "..."

    @admin.display(description="confidence", ordering="confidence")
    def confidence_display(self, message: Message) -> str:
        return "" if message.confidence is None else f"{message.confidence:.2f}"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, message: Message) -> str:
        return "" if message.latency_ms is None else f"{message.latency_ms:.1f} ms"

    @admin.display(description="conversation")
    def conversation_link(self, message: Message) -> str:
        return format_html(
            '<a href="../conversation/{}/change/">#{}</a>', message.conversation_id, message.conversation_id
        )
