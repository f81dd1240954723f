"""Helpers for migrations that only mean something on Postgres (skipped on SQLite)."""


def postgres_only(sql: str):
    """A RunPython callable executing `sql` on Postgres and doing nothing elsewhere."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run
