from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ImportForm
from import_export.tmp_storages import MediaStorage

from chatbot.knowledge.models import AlternateQuestion, FollowUp, OutOfScopeExample, QAPair
from chatbot.knowledge.resources import CSV, JSON, QAPairResource
from chatbot.retention import log_rows_keep


class CappedImportForm(ImportForm):
    def clean_import_file(self) -> Any:
        upload = self.cleaned_data["import_file"]
        limit = settings.CHATBOT_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(
                f"This file is {upload.size / 1e6:.1f} MB; imports are limited to {limit / 1e6:.1f} MB "
                "(CHATBOT_IMPORT_MAX_BYTES). Split it into several files."
            )
        return upload


class UploadStorage(MediaStorage):
    """Between the preview and the confirmation the upload is kept in the default storage (MEDIA_ROOT, or S3),
    read back as bytes, exactly as sent, by whichever web process gets the confirmation. The preview itself
    parses the bytes it has just saved instead of fetching them back."""

    _saved: bytes | None = None

    def save(self, data: bytes) -> None:
        super().save(data)
        self._saved = data

    def read(self) -> bytes:
        return self._saved if self._saved is not None else super().read()


class AlternateQuestionInline(admin.TabularInline):
    model = AlternateQuestion
    extra = 1
    fields = ("text", "source", "created_at")
    readonly_fields = ("created_at",)


class FollowUpInline(admin.TabularInline):
    model = FollowUp
    fk_name = "pair"
    extra = 1
    fields = ("followup", "order")
    autocomplete_fields = ("followup",)
    verbose_name_plural = "follow-up questions (offered as buttons after this answer; lowest order first)"


@admin.register(QAPair)
class QAPairAdmin(ImportExportModelAdmin):
    resource_classes = [QAPairResource]
    formats = [CSV, JSON]
    import_form_class = CappedImportForm
    tmp_storage_class = UploadStorage
    list_display = (
        "question",
        "language",
        "category",
        "n_alternates",
        "handoff",
        "is_active",
        "updated_at",
        "updated_by",
    )
    list_filter = ("language", "category", "is_active", "handoff")
    list_editable = ("is_active",)
    search_fields = ("question", "answer", "alternates__text")
    readonly_fields = ("created_at", "updated_at", "updated_by")
    list_select_related = ("updated_by",)
    inlines = [AlternateQuestionInline, FollowUpInline]
    actions = ["activate", "deactivate"]
    fieldsets = (
        (None, {"fields": ("question", "answer", "language", "category")}),
        ("Behaviour", {"fields": ("is_active", "handoff")}),
        ("History", {"fields": ("created_at", "updated_at", "updated_by")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(alternate_count=Count("alternates", distinct=True))

    @admin.display(description="alternates", ordering="alternate_count")
    def n_alternates(self, pair: QAPair) -> int:
        return pair.alternate_count  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: QAPair, form: object, change: bool) -> None:
        if request.user.is_authenticated:  # always, behind the admin's login
            obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def get_import_resource_kwargs(self, request: HttpRequest, **kwargs: object) -> dict:
        return {**super().get_import_resource_kwargs(request, **kwargs), "user": request.user}

    def get_import_data_kwargs(self, **kwargs: object) -> dict:
        # one bad row saves nothing, at the confirming step too (the default keeps the good rows)
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    @admin.action(description="Activate selected pairs")
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(is_active=True, updated_by=request.user)
        self.message_user(request, f"{count} pair(s) activated; new pairs are learned at the next training.")

    @admin.action(description="Deactivate selected pairs (the bot stops giving them at once)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(is_active=False, updated_by=request.user)
        self.message_user(request, f"{count} pair(s) deactivated.")


class FromMessageAdmin(admin.ModelAdmin):
    """Rows made from customer messages go when their conversation is deleted, unless kept as curated."""

    readonly_fields = ("source_message", "kept_by", "kept_at", "created_at")
    actions = ["keep_as_curated"]

    @admin.display(description="from a conversation", boolean=True)
    def linked(self, row: AlternateQuestion | OutOfScopeExample) -> bool:
        return row.source_message_id is not None

    @admin.action(
        description="Keep as curated (stays when the customer's conversation is deleted)", permissions=["change"]
    )
    def keep_as_curated(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = log_rows_keep(rows=queryset, user=request.user)
        self.message_user(request, f"{count} row(s) kept as curated, by you, now.")


@admin.register(AlternateQuestion)
class AlternateQuestionAdmin(FromMessageAdmin):
    list_display = ("text", "pair", "source", "linked", "kept_by", "created_at")
    list_filter = ("source", "pair__language")
    search_fields = ("text", "pair__question")
    list_select_related = ("pair", "kept_by")
    autocomplete_fields = ("pair",)


@admin.register(OutOfScopeExample)
class OutOfScopeExampleAdmin(FromMessageAdmin):
    list_display = ("text", "language", "source", "linked", "kept_by", "created_at")
    list_filter = ("language", "source")
    search_fields = ("text",)
    list_select_related = ("kept_by",)
