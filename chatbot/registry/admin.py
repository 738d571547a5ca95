from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.services import model_version_activate, training_run_create


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "is_active", "encoder", "n_labels", "n_examples", "threshold", "created_at",
                    "activated_at")
    list_filter = ("status", "encoder")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Put the selected version in service (roll back / force-activate)", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        model_version_activate(version)
        self.message_user(request, f"{version} is now in service; workers switch on their next message.")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "progress_bar", "trigger", "encoder", "examples", "duration", "created_at",
                    "model_version")
    list_filter = ("status", "trigger")
    readonly_fields = [f.name for f in TrainingRun._meta.fields]
    change_list_template = "admin/registry/trainingrun/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress")
    def progress_bar(self, run: TrainingRun) -> str:
        percent = round(run.progress * 100)
        return format_html('<progress max="100" value="{}" aria-label="{}%">{}%</progress> {}%', percent, percent,
                           percent, percent)

    @admin.display(description="examples")
    def examples(self, run: TrainingRun) -> int | None:
        return run.counts.get("examples")

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        seconds = run.duration_seconds
        return "" if seconds is None else f"{seconds:.1f} s"

    def get_urls(self) -> list:
        return [path("retrain/", self.admin_site.admin_view(self.retrain_view), name="registry_trainingrun_retrain"),
                *super().get_urls()]

    def retrain_view(self, request: HttpRequest) -> HttpResponse:
        changelist = reverse("admin:registry_trainingrun_changelist")
        if request.method != "POST" or not request.user.has_perm("registry.change_trainingrun"):
            return HttpResponseRedirect(changelist)
        run = training_run_create(trigger=TrainingRun.Trigger.ADMIN, user=request.user)
        self.message_user(request, f"{run} queued on the training queue.")
        return HttpResponseRedirect(changelist)
