from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

RETENTION_TASK = "Delete old conversations (retention)"


def ensure_retention_schedule(**kwargs: Any) -> None:
    """Create the nightly retention entry once; after that it is the admin's to edit."""
    from django.conf import settings
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=RETENTION_TASK).exists():
        return
    minute, hour, day_of_month, month_of_year, day_of_week = settings.CHATBOT_RETENTION_CRONTAB.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name=RETENTION_TASK,
        task="chatbot.conversations.tasks.conversations_purge_task",
        crontab=crontab,
        queue="inference",
        description="Deletes conversations not seen for CHATBOT_RETENTION_DAYS days.",
    )


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from chatbot.conversations.replies import pairs_changed
        from chatbot.roles import roles_ensure

        post_save.connect(pairs_changed, sender="knowledge.QAPair", dispatch_uid="pairs_changed_save")
        post_delete.connect(pairs_changed, sender="knowledge.QAPair", dispatch_uid="pairs_changed_delete")
        post_migrate.connect(ensure_retention_schedule, sender=self)
        post_migrate.connect(roles_ensure, dispatch_uid="chatbot.roles")
