from django.db import migrations

# The dashboard's figures read one sender's messages in a time range. These indexes belong to its queries,
# so they live with the dashboard: on PostgreSQL they also carry the columns the figures read (index-only
# scans); SQLite (the embedded mode) takes the plain partial index.
BOT_COLUMNS = "outcome, confidence, latency_ms, helpful, pair_id, model_version_id, conversation_id"
INDEXES = {
    "dashboard_bot_replies": ("created_at", BOT_COLUMNS, "sender = 'bot'"),
    "dashboard_customer_messages": ("created_at", "conversation_id, suggested_pair_id", "sender = 'customer'"),
}


def create(apps, schema_editor) -> None:  # noqa: ANN001
    postgres = schema_editor.connection.vendor == "postgresql"
    for name, (key, carried, where) in INDEXES.items():
        include = f" INCLUDE ({carried})" if postgres else ""
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON conversations_message ({key}){include} WHERE {where}"
        )


def drop(apps, schema_editor) -> None:  # noqa: ANN001
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
