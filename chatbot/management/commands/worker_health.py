from django.core.management.base import BaseCommand, CommandError

from chatbot.health import workers_status
from chatbot.registry.engine import active_version_id


class Command(BaseCommand):
    help = (
        "Health check for inference workers: fails when none reported recently or one does not serve the active model."
    )

    def handle(self, *args: object, **options: object) -> None:
        workers, active = workers_status(), active_version_id()
        for worker in workers:
            self.stdout.write(f"{worker['worker']}: v{worker.get('loaded_version')} {worker.get('error') or 'ok'}")
        if not workers:
            raise CommandError("no inference worker reported in the last heartbeats")
        behind = [w["worker"] for w in workers if w.get("loaded_version") != active]
        if behind:
            raise CommandError(f"not serving the active model v{active}: {', '.join(behind)}")
