import logging
import os
from typing import Any

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

logger = logging.getLogger(__name__)

app = Celery("chatbot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

RECOVER_TASK = "chatbot.conversations.tasks.recover_unanswered_task"


class RecoverySweep(bootsteps.StartStopStep):
    """Every CHATBOT_RECOVERY_SECONDS, each worker queues a sweep for customer messages left without an answer.

    Kombu's Redis transport takes a task off the queue (BRPOP) before it records it as unacknowledged
    (HSET unacked): a worker killed between the two takes the task with it, and no visibility timeout
    brings it back. PostgreSQL still holds the customer message, so the sweep (recover_unanswered_task)
    queues it again. Runs in the worker, not in beat, so that it works wherever inference workers run.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref = None

    def start(self, parent: Any) -> None:
        from django.conf import settings

        interval = settings.CHATBOT_RECOVERY_SECONDS
        if interval > 0 and not settings.CHATBOT_INLINE_INFERENCE:
            self.tref = parent.timer.call_repeatedly(interval, self.sweep, priority=10)

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)

    def sweep(self) -> None:
        try:  # no publish retries: they would hold up this worker's event loop while the broker is down
            app.send_task(RECOVER_TASK, retry=False)
        except Exception:  # the next tick tries again
            logger.warning("recovery sweep not queued (broker unavailable)", exc_info=True)


app.steps["consumer"].add(RecoverySweep)
