import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.knowledge.models import OutOfScopeExample
from chatbot.knowledge.services import qa_import_file
from chatbot.knowledge.text import detect_language
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.pipeline import recipe_forced, training_run_execute
from chatbot.registry.services import training_run_create

DEMO = Path(__file__).resolve().parents[2] / "demo" / "demo_qa.json"
OUT_OF_SCOPE = DEMO.with_name("out_of_scope.json")


class Command(BaseCommand):
    help = "Load the bilingual demo knowledge base (idempotent) and train the first model if none is in service."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-train", action="store_true", help="Load the pairs only.")
        parser.add_argument("--retrain", action="store_true", help="Train even if a model is in service.")
        parser.add_argument(
            "--no-improve",
            action="store_true",
            help="Do not queue the background training run that looks for a better model than the first one.",
        )

    def handle(self, *args: object, no_train: bool, retrain: bool, no_improve: bool = False, **options: object) -> None:
        report = qa_import_file(path=DEMO)
        if not report.ok:
            raise CommandError("demo data did not import:\n" + "\n".join(report.errors))
        self.stdout.write(f"Demo knowledge base: {report.created} new, {report.updated} existing pairs.")
        for text in json.loads(OUT_OF_SCOPE.read_text(encoding="utf-8")):
            OutOfScopeExample.objects.get_or_create(text=text, defaults={"language": detect_language(text)})
        if no_train or (ModelVersion.objects.filter(is_active=True).exists() and not retrain):
            return
        self.stdout.write("Training the first model...")
        run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.DEMO), quick=True)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"{run.model_version} in service after {run.duration_seconds:.1f} s."))
        if not recipe_forced() and not no_improve:
            # the automatic choice trains the slower candidates on the training queue and replaces the fast
            # model when it does better on the held-out set
            queued = training_run_create(trigger=TrainingRun.Trigger.DEMO)
            self.stdout.write(f"{queued} queued: the automatic choice of a better model, in the background.")
