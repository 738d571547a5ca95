from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

RETENTION_TASK = "Delete old conversations (retention)"


def ensure_retention_schedule(**kwargs: Any) -> None:
    from django.conf import settings

    from chatbot.schedules import schedule_ensure

    schedule_ensure(
        name=RETENTION_TASK,
        task="chatbot.conversations.tasks.conversations_purge_task",
        crontab=settings.CHATBOT_RETENTION_CRONTAB,
        queue="inference",
        description="Deletes conversations not seen for CHATBOT_RETENTION_DAYS days.",
    )


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        post_migrate.connect(ensure_retention_schedule, sender=self)
