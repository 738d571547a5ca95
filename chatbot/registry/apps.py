from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

RETRAIN_TASK = "Retrain the answer model"


def ensure_retrain_schedule(**kwargs: Any) -> None:
    from django.conf import settings

    from chatbot.schedules import schedule_ensure

    schedule_ensure(
        name=RETRAIN_TASK,
        task="chatbot.registry.tasks.scheduled_retrain_task",
        crontab=settings.CHATBOT_RETRAIN_CRONTAB,
        queue="training",
        description="Trains a new model from the curated pairs and reviewed messages.",
    )


class RegistryConfig(AppConfig):
    name = "chatbot.registry"
    verbose_name = "Models and training"

    def ready(self) -> None:
        post_migrate.connect(ensure_retrain_schedule, sender=self)
