import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.registry.models import TrainingRun
from chatbot.registry.pipeline import training_run_execute
from chatbot.registry.services import training_run_create


class Command(BaseCommand):
    help = "Train a new model from the knowledge base on the training queue (or here, with --inline)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", action="store_true", help="Wait for the run to finish and report it.")
        parser.add_argument("--inline", action="store_true", help="Train in this process instead of a worker.")
        parser.add_argument("--timeout", type=float, default=1800, help="Seconds to wait with --wait.")

    def handle(self, *args: object, wait: bool, inline: bool, timeout: float, **options: object) -> None:
        if inline:
            run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.COMMAND))
            if run.status == TrainingRun.Status.QUEUED:
                run.delete()
                raise CommandError("Another training run is in progress; try again when it has finished.")
        else:
            run = training_run_create(trigger=TrainingRun.Trigger.COMMAND)
            self.stdout.write(f"{run} queued.")
            if not wait:
                return
            run = self._wait(run, timeout)
        self._report(run)

    def _wait(self, run: TrainingRun, timeout: float) -> TrainingRun:
        deadline, shown = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.is_finished:
                return run
            percent = round(run.progress * 100)
            if percent != shown:
                self.stdout.write(f"  {run.get_status_display()}: {percent}%")
                shown = percent
            time.sleep(0.5)
        raise CommandError(f"{run} did not finish within {timeout:.0f} s (is a training worker running?)")

    def _report(self, run: TrainingRun) -> None:
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(f"{run}: {run.error}")
        if run.status == TrainingRun.Status.REJECTED:
            raise CommandError(f"{run}: {run.error} {run.model_version} kept as a rejected candidate.")
        if run.status == TrainingRun.Status.SKIPPED:
            self.stdout.write(f"{run}: nothing changed since the last run.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{run} finished in {run.duration_seconds:.1f} s: {run.model_version} in service "
                f"({run.counts.get('train')} training and {run.counts.get('held_out')} held-out examples, "
                f"{run.counts.get('pairs')} pairs)."
            )
        )
        chosen = next((c for c in run.candidates if c.get("chosen")), None)
        if chosen:
            self.stdout.write(f"Recipe: {chosen['recipe']}. {chosen.get('reason', '')}")
