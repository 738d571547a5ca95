from django.core.management.base import BaseCommand

from chatbot.roles import roles_ensure


class Command(BaseCommand):
    help = "Create (or reset) the Operators and Admins groups with their permissions."

    def handle(self, *args: object, **options: object) -> None:
        for name, count in roles_ensure().items():
            self.stdout.write(f"{name}: {count} permissions")
