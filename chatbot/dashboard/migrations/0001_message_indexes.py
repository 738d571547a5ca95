from django.db import migrations

# The dashboard's figures read one sender's messages in a time range; these indexes belong to its queries,
# so they live with the dashboard (plain SQL that PostgreSQL and SQLite both take).
INDEXES = {
    "dashboard_message_sender_created": "conversations_message (sender, created_at)",
}


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {target}",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, target in INDEXES.items()
    ]
