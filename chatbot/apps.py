from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ProjectConfig(AppConfig):
    """What spans the apps: the staff roles, worker health, metrics (and their management commands)."""

    name = "chatbot"
    verbose_name = "Support bot"

    def ready(self) -> None:
        from chatbot.roles import roles_ensure

        post_migrate.connect(roles_ensure, dispatch_uid="chatbot.roles")
