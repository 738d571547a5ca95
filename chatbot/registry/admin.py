from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from chatbot.knowledge.models import QAPair, language_name
from chatbot.registry.charts import operating_point_words, tradeoff_chart, training_curves
from chatbot.registry.explain import numbers_table
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.services import model_version_activate, model_version_set_threshold, training_run_create
from training.data import OUT_OF_SCOPE


def _progress_html(run: TrainingRun) -> str:
    percent = round(run.progress * 100)
    return format_html(
        '<progress max="100" value="{}" aria-label="{}%">{}%</progress> <span class="percent">{}%</span>',
        percent,
        percent,
        percent,
        percent,
    )


def _label_questions(labels: set[str]) -> dict[str, str]:
    ids = [int(label) for label in labels if label.isdigit()]
    questions = {str(pk): question for pk, question in QAPair.objects.filter(pk__in=ids).values_list("id", "question")}
    return {**questions, OUT_OF_SCOPE: "(not sure / out of scope)"}


def gate_rows(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """Disagreements with the pairs' questions, for the side-by-side table."""
    rows = gate.get("disagreements") or []
    names = _label_questions({row[key] for row in rows for key in ("gold", "candidate", "active")})
    return [
        {
            **row,
            "gold_text": names.get(row["gold"], f"pair {row['gold']} (deleted)"),
            "candidate_text": names.get(row["candidate"], row["candidate"]),
            "active_text": names.get(row["active"], row["active"]),
            "candidate_right": row["candidate"] == row["gold"],
            "active_right": row["active"] == row["gold"],
        }
        for row in rows
    ]


def language_rules_words(rules: dict[str, Any]) -> str:
    """A version's per-language rules in a line: "English: threshold 0.412, margin 0.050; Chinese: ..."."""
    return "; ".join(
        f"{language_name(lang)}: threshold {rule['threshold']:.3f}, margin {rule['margin']:.3f}"
        for lang, rule in sorted((rules or {}).items())
    )


def version_recipe(version: ModelVersion) -> tuple[str, str]:
    """The version's recipe in plain words (training/auto.py describe, stored at training: the web process
    does not import the model code), and why it was chosen (the training run that made it)."""
    recipe = version.metrics.get("recipe") or version.encoder  # versions trained before recipes were recorded
    run = TrainingRun.objects.filter(model_version=version).first()
    chosen = next((c for c in run.candidates if c.get("chosen")), None) if run else None
    return recipe, (chosen or {}).get("reason", "")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "is_active",
        "encoder",
        "recipe",
        "n_labels",
        "n_examples",
        "threshold",
        "gate_summary",
        "created_at",
        "activated_at",
    )
    list_filter = ("status", "encoder")
    readonly_fields = [
        *(f.name for f in ModelVersion._meta.fields if f.name not in ("calibration", "metrics")),
        "version_metrics",
    ]
    exclude = ("calibration", "metrics")
    actions = ["activate"]
    change_form_template = "admin/registry/modelversion/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="recipe")
    def recipe(self, version: ModelVersion) -> str:
        return version.metrics.get("recipe", "")

    @admin.display(description="metrics")
    def version_metrics(self, version: ModelVersion) -> str:
        return numbers_table(version.metrics)

    @admin.display(description="gate")
    def gate_summary(self, version: ModelVersion) -> str:
        run = getattr(version, "training_run", None)
        if run is None or not run.gate:
            return ""
        checks = run.gate.get("checks") or []
        text = ", ".join(f"{c['metric']} {c['candidate']} vs {c['active']}" for c in checks) or run.gate.get("note", "")
        return f"{'passed' if run.gate.get('passed') else 'rejected'}: {text}"

    @admin.action(
        description="Put the selected version in service (roll back / force-activate)", permissions=["change"]
    )
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        self._activate(request, queryset.get())

    def _activate(self, request: HttpRequest, version: ModelVersion) -> None:
        try:
            model_version_activate(version)
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"{version} is now in service; workers switch on their next message.")

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/activate/", view(require_POST(self.activate_view)), name="registry_modelversion_activate"),
            path(
                "<int:pk>/threshold/", view(require_POST(self.threshold_view)), name="registry_modelversion_threshold"
            ),
            *super().get_urls(),
        ]

    def activate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_object_or_404(ModelVersion, pk=pk)
        if self.has_change_permission(request, version):
            self._activate(request, version)
        return HttpResponseRedirect(reverse("admin:registry_modelversion_change", args=[pk]))

    def threshold_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_object_or_404(ModelVersion, pk=pk)
        if self.has_change_permission(request, version):
            replaced = language_rules_words(version.language_rules)
            try:
                model_version_set_threshold(version, threshold=float(request.POST.get("threshold", "")))
                said = f"{version}: threshold set to {version.threshold:.3f} for every language"
                if replaced:
                    said += f"; it replaces the per-language thresholds chosen at training ({replaced})"
                self.message_user(request, said + ".")
            except ValueError as error:
                self.message_user(request, f"Not a threshold: {error}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:registry_modelversion_change", args=[pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        version = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if version is not None:
            context["tradeoff_chart"] = tradeoff_chart(version.calibration, version.threshold)
            context["operating_point"] = operating_point_words(version.calibration, version.threshold)
            context["tradeoff_points"] = version.calibration.get("points", [])[::4]
            context["calibrated_threshold"] = version.calibration.get("calibrated_threshold")
            context["language_rules"] = language_rules_words(version.language_rules)
            context["recipe"], context["recipe_reason"] = version_recipe(version)
        return super().change_view(request, object_id, form_url, extra_context=context)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "progress_bar",
        "trigger",
        "encoder",
        "examples",
        "duration",
        "created_at",
        "model_version",
        "reason",
    )
    list_filter = ("status", "trigger")
    list_select_related = ("model_version", "requested_by")
    fields = (
        "status",
        "trigger",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "encoder",
        "data_counts",
        "run_metrics",
        "fingerprint",
        "model_version",
        "artifact",
        "error",
    )
    readonly_fields = fields
    change_list_template = "admin/registry/trainingrun/change_list.html"
    change_form_template = "admin/registry/trainingrun/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="data")
    def data_counts(self, run: TrainingRun) -> str:
        return numbers_table(run.counts)

    @admin.display(description="metrics")
    def run_metrics(self, run: TrainingRun) -> str:
        return numbers_table(run.metrics)

    @admin.display(description="progress")
    def progress_bar(self, run: TrainingRun) -> str:
        return _progress_html(run)

    @admin.display(description="examples")
    def examples(self, run: TrainingRun) -> int | None:
        return run.counts.get("examples")

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        seconds = run.duration_seconds
        return "" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="why")
    def reason(self, run: TrainingRun) -> str:
        return run.error.splitlines()[0][:120] if run.error else ""

    @admin.display(description="artifact")
    def artifact(self, run: TrainingRun) -> str:
        version = run.model_version
        return f"{version.artifact.name} (sha256 {version.checksum})" if version else ""

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("retrain/", view(self.retrain_view), name="registry_trainingrun_retrain"),
            path("<int:pk>/progress/", view(self.progress_view), name="registry_trainingrun_progress"),
            *super().get_urls(),
        ]

    def retrain_view(self, request: HttpRequest) -> HttpResponse:
        changelist = reverse("admin:registry_trainingrun_changelist")
        if request.method != "POST" or not request.user.has_perm("registry.change_trainingrun"):
            return HttpResponseRedirect(changelist)
        run = training_run_create(trigger=TrainingRun.Trigger.ADMIN, user=request.user)
        self.message_user(request, f"{run} queued on the training queue.")
        return HttpResponseRedirect(changelist)

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        run = get_object_or_404(TrainingRun, pk=pk)
        return JsonResponse(
            {
                "status": run.status,
                "status_display": run.get_status_display(),
                "progress": run.progress,
                "finished": run.is_finished,
                "epochs": len(run.history),
                "chart": str(training_curves(run.history)),
            }
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        live = TrainingRun.objects.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]).exists()
        return super().changelist_view(request, extra_context={**(extra_context or {}), "live": live})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if run is not None:
            context.update(
                run=run,
                progress_html=_progress_html(run),
                curves=training_curves(run.history),
                gate=run.gate,
                candidates=run.candidates,
                choice=next((c.get("reason", "") for c in run.candidates if c.get("chosen")), ""),
                budget=settings.CHATBOT_TRAIN_BUDGET_SECONDS,
                disagreements=gate_rows(run.gate),
            )
        return super().change_view(request, object_id, form_url, extra_context=context)
