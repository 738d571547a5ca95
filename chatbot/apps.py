from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class ProjectConfig(AppConfig):
    """What spans the apps: staff roles, periodic tasks, worker health, metrics (and their management commands)."""

    name = "chatbot"
    verbose_name = "Support bot"

    def ready(self) -> None:
        from chatbot.roles import roles_ensure
        from chatbot.schedules import schedules_ensure

        post_migrate.connect(roles_ensure, dispatch_uid="chatbot.roles")
        # After django_celery_beat's migrations: the schedules are rows of its tables.
        post_migrate.connect(schedules_ensure, sender=apps.get_app_config("django_celery_beat"))
