from django.db import migrations


def forget(apps, schema_editor) -> None:  # noqa: ANN001
    """The stored days have neither the sites nor the unanswered groups: the task rolls them up again (in a
    migration of its own, so that no deletion is pending when the next one alters the table)."""
    apps.get_model("dashboard", "RolledDay").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0002_rollups")]

    operations = [migrations.RunPython(forget, migrations.RunPython.noop)]
