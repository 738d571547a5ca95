"""Messages leave 30 % of each page free: an answer is updated half a second after it is written (marked
delivered); on full pages that update could not stay on the row's page (a HOT update), so each one wrote a new entry
into every index of the table. PostgreSQL only (SQLite has no fill factor)."""

from django.db import migrations


def fillfactor(value: int | None):  # noqa: ANN201
    def apply(apps, schema_editor):  # noqa: ANN001, ANN202
        if schema_editor.connection.vendor == "postgresql":
            setting = f"SET (fillfactor = {value})" if value else "RESET (fillfactor)"
            schema_editor.execute(f"ALTER TABLE conversations_message {setting}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("conversations", "0004_message_indexes")]

    operations = [migrations.RunPython(fillfactor(70), fillfactor(None))]
