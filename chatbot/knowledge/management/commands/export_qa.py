from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.knowledge.services import qa_export_file


class Command(BaseCommand):
    help = "Export all Q&A pairs to a .csv or .json file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")

    def handle(self, *args: object, path: str, **options: object) -> None:
        try:
            count = qa_export_file(path=path)
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Exported {count} pairs to {path}."))
