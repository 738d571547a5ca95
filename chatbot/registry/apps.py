from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_retrain_schedule(**kwargs: Any) -> None:
    """Create the nightly retraining entry once; after that it is the admin's to edit."""
    from django.conf import settings
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name="Retrain the answer model").exists():
        return
    minute, hour, day_of_month, month_of_year, day_of_week = settings.CHATBOT_RETRAIN_CRONTAB.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name="Retrain the answer model",
        task="chatbot.registry.tasks.scheduled_retrain_task",
        crontab=crontab,
        queue="training",
        description="Trains a new model from the curated pairs and reviewed messages.",
    )


class RegistryConfig(AppConfig):
    name = "chatbot.registry"
    verbose_name = "Models and training"

    def ready(self) -> None:
        post_migrate.connect(ensure_retrain_schedule, sender=self)
