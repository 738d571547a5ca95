"""Migration tests: a script run in a fresh interpreter on a database of its own, migrated from the state before
the migration under test (the test database of the session is already at the end)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def fresh_database_run(module: str) -> Any:
    """Run `python -m <module> <database>` on a new, empty database; the JSON its last line prints."""
    name = f"{module.rsplit('.', 1)[-1]}_{os.getpid()}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, name], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_to(before: list[tuple[str, str]]) -> Any:
    """In the script: Django set up on the database named by argv, migrated to `before`; its models' getter."""
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{sys.argv[1]}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    return executor.loader.project_state(before).apps.get_model


def migrated_to_the_end() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
