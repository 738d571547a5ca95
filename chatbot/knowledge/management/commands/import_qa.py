from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.knowledge.services import qa_import_file


class Command(BaseCommand):
    help = "Import Q&A pairs from a .csv or .json file; a pair with the same question is updated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report, save nothing.")

    def handle(self, *args: object, path: str, dry_run: bool, **options: object) -> None:
        try:
            report = qa_import_file(path=path, dry_run=dry_run)
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        if not report.ok:
            for line in report.errors:
                self.stderr.write(line)
            raise CommandError(f"{len(report.errors)} error(s); nothing was imported.")
        verb = "Would import" if dry_run else "Imported"
        self.stdout.write(self.style.SUCCESS(f"{verb}: {report.created} new, {report.updated} updated."))
