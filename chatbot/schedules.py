"""The product's periodic tasks (django-celery-beat): each created once, after `migrate`, with its default crontab
from the settings; after that they are the admin's to edit."""

from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    crontab_setting: str  # five fields, minute first
    queue: str
    description: str


RETRAIN = Schedule(
    name="Retrain the answer model",
    task="chatbot.registry.tasks.scheduled_retrain_task",
    crontab_setting="CHATBOT_RETRAIN_CRONTAB",
    queue="training",
    description="Trains a new model from the curated pairs and reviewed messages.",
)
RETENTION = Schedule(
    name="Delete old conversations (retention)",
    task="chatbot.conversations.tasks.conversations_purge_task",
    crontab_setting="CHATBOT_RETENTION_CRONTAB",
    queue="inference",
    description="Deletes conversations not seen for CHATBOT_RETENTION_DAYS days.",
)
DASHBOARD_ROLLUP = Schedule(
    name="Roll up the dashboard's closed days",
    task="chatbot.dashboard.tasks.dashboard_rollup_task",
    crontab_setting="CHATBOT_DASHBOARD_ROLLUP_CRONTAB",
    queue="inference",
    description="Counts each closed day's figures once, and again when feedback on it arrives later.",
)
SCHEDULES = (RETRAIN, RETENTION, DASHBOARD_ROLLUP)


def schedules_ensure(**kwargs: Any) -> None:
    """post_migrate: create each periodic task that does not exist yet."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    for schedule in SCHEDULES:
        if PeriodicTask.objects.filter(name=schedule.name).exists():
            continue
        minute, hour, day_of_month, month_of_year, day_of_week = getattr(settings, schedule.crontab_setting).split()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.create(
            name=schedule.name,
            task=schedule.task,
            crontab=crontab,
            queue=schedule.queue,
            description=schedule.description,
        )
