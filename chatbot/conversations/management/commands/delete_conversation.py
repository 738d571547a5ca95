from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.conversations.services import conversation_delete


class Command(BaseCommand):
    help = "Delete one customer's conversation and all its messages, by token (the customer's) or id."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument(
            "--token", help="the conversation token; write --token=T when it starts with a dash (tokens may)"
        )
        group.add_argument("--id", type=int)

    def handle(self, *args: object, token: str | None, id: int | None, **options: object) -> None:
        deleted = conversation_delete(token=token or "", conversation_id=id)
        if deleted < 0:
            raise CommandError("No such conversation.")
        self.stdout.write(f"Conversation deleted with its {deleted} messages.")
