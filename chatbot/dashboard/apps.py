from typing import Any

from django.apps import AppConfig
from django.db.models.signals import pre_delete


class DashboardConfig(AppConfig):
    name = "chatbot.dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from chatbot.conversations.models import Conversation

        pre_delete.connect(_conversation_deleting, sender=Conversation, dispatch_uid="dashboard.rollups")


def _conversation_deleting(*, instance: Any, **kwargs: Any) -> None:
    """Its messages leave their days' counts: those days are read live until rolled up again."""
    from chatbot.conversations.models import Message
    from chatbot.dashboard.tallies import rollups_forget

    rollups_forget(days=Message.objects.filter(conversation=instance).dates("created_at", "day"))
