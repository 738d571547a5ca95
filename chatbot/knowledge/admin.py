from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ImportForm
from import_export.tmp_storages import MediaStorage

from chatbot.knowledge.models import (
    AlternateQuestion,
    FollowUp,
    Language,
    OutOfScopeExample,
    PairAnswer,
    QAPair,
    language_name,
    languages,
)
from chatbot.knowledge.resources import CSV, JSON, QAPairResource
from chatbot.knowledge.services import pairs_merge
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


class AnswersFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            form
            for form in self.forms
            if form.cleaned_data.get("text") and not form.cleaned_data.get("DELETE") and form not in self.deleted_forms
        ]
        if not kept:
            raise ValidationError("A pair needs an answer in at least one language.")


class PairAnswerInline(admin.TabularInline):
    """One row per language of CHATBOT_LANGUAGES; a language left empty falls back to another's answer."""

    model = PairAnswer
    formset = AnswersFormSet
    fields = ("language", "text")
    verbose_name_plural = "answers (one per language; the bot answers in the customer's language when it has it)"

    def missing(self, obj: QAPair | None) -> list[str]:
        have = set(obj.translations.values_list("language", flat=True)) if obj is not None and obj.pk else set()
        return [code for code in languages() if code not in have]

    def get_extra(self, request: HttpRequest, obj: QAPair | None = None, **kwargs: Any) -> int:
        return len(self.missing(obj))

    def get_max_num(self, request: HttpRequest, obj: QAPair | None = None, **kwargs: Any) -> int:
        return len(Language.choices)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "language":
            kwargs["choices"] = [(code, language_name(code)) for code in languages()]
        if db_field.name == "text":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 4, "cols": 80})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


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


class AnsweredInFilter(admin.SimpleListFilter):
    title = "answered in"
    parameter_name = "answered_in"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, language_name(code)) for code in languages()] + [
            (f"-{code}", f"missing {language_name(code)}") for code in languages()
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or ""
        if value.startswith("-"):
            return queryset.exclude(translations__language=value[1:])
        return queryset.filter(translations__language=value) if value else queryset


@admin.register(QAPair)
class QAPairAdmin(ImportExportModelAdmin):
    resource_classes = [QAPairResource]
    formats = [CSV, JSON]
    import_form_class = CappedImportForm
    tmp_storage_class = UploadStorage
    list_display = (
        "question",
        "answered_in",
        "category",
        "n_alternates",
        "handoff",
        "is_active",
        "updated_at",
        "updated_by",
    )
    list_filter = (AnsweredInFilter, "category", "is_active", "handoff")
    list_editable = ("is_active",)
    search_fields = ("question", "translations__text", "alternates__text")
    readonly_fields = ("created_at", "updated_at", "updated_by", "merged_into")
    list_select_related = ("updated_by",)
    inlines = [PairAnswerInline, AlternateQuestionInline, FollowUpInline]
    actions = ["activate", "deactivate", "merge"]
    fieldsets = (
        (None, {"fields": ("question", "category")}),
        ("Behaviour", {"fields": ("is_active", "handoff", "merged_into")}),
        ("History", {"fields": ("created_at", "updated_at", "updated_by")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(alternate_count=Count("alternates", distinct=True))
            .prefetch_related("translations")
        )

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, PairAnswerInline):  # the empty rows come with their language chosen
            kwargs["initial"] = [{"language": code} for code in inline.missing(obj)]
        return kwargs

    @admin.display(description="answers")
    def answered_in(self, pair: QAPair) -> str:
        return " ".join(sorted(pair.answer_texts())) or "-"

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

    @admin.action(description="Merge into one topic", permissions=["change"])
    def merge(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """Asks which pair survives (as the delete action asks for a confirmation), then merges the others
        into it: their questions become its alternates, their answers fill its missing languages."""
        pairs = list(queryset.prefetch_related("translations").order_by("pk"))
        if len(pairs) < 2:
            self.message_user(request, "Select at least two pairs to merge.", messages.WARNING)
            return None
        survivor_id = request.POST.get("survivor", "")
        survivor = next((pair for pair in pairs if str(pair.pk) == survivor_id), None)
        if "apply" in request.POST and survivor is not None:
            merged = pairs_merge(survivor=survivor, merged=[p for p in pairs if p != survivor], user=request.user)
            self.message_user(
                request,
                f"{len(merged)} pair(s) merged into “{survivor}”; the bot answers them with its answers now, and a "
                "training run is queued to learn the topic as one.",
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge into one topic",
            "pairs": pairs,
            "survivor": survivor or max(pairs, key=lambda pair: (len(pair.answer_texts()), -pair.pk)),
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/knowledge/qapair/merge.html", context)


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
    list_filter = ("source",)
    search_fields = ("text", "pair__question")
    list_select_related = ("pair", "kept_by")
    autocomplete_fields = ("pair",)


@admin.register(OutOfScopeExample)
class OutOfScopeExampleAdmin(FromMessageAdmin):
    list_display = ("text", "language", "source", "linked", "kept_by", "created_at")
    list_filter = ("language", "source")
    search_fields = ("text",)
    list_select_related = ("kept_by",)
