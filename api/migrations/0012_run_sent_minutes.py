import django.db.models.deletion
from django.db import migrations, models

# The triggers that keep api_runsentminute current: per run and minute of `sent_at`, how many
# messages are `sent`. The net change of each statement, like 0009's status counters: +1 for
# every row that is sent after it, -1 for every row that was sent before it (a row that stays
# sent in the same minute nets 0), so any writer (outcomes, a manual UPDATE, a delete) keeps
# it exact. A copy of the SQL at the time of this migration (api/services/sent_minutes.py
# has the live one, for the recount): a migration must not change when the code does.
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION api_message_sent_minute_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO api_runsentminute (run_id, minute, shard, sent)
    SELECT run_id, minute, pg_backend_pid(), sum(delta) FROM ({rows}) AS moved
    GROUP BY run_id, minute HAVING sum(delta) <> 0
    ORDER BY run_id, minute
    ON CONFLICT (run_id, minute, shard)
    DO UPDATE SET sent = api_runsentminute.sent + EXCLUDED.sent;
    RETURN NULL;
END $$;
CREATE TRIGGER api_message_sent_minute_{name} AFTER {event} ON api_message
REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION api_message_sent_minute_{name}();
"""
SENT = "status = 'sent' AND sent_at IS NOT NULL"
POSTGRES_TRIGGERS = {
    "inserted": (
        "INSERT",
        "NEW TABLE AS new_rows",
        f"SELECT run_id, date_trunc('minute', sent_at) AS minute, 1 AS delta FROM new_rows"
        f" WHERE {SENT}",
    ),
    "updated": (
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        f"SELECT run_id, date_trunc('minute', sent_at) AS minute, -1 AS delta FROM old_rows"
        f" WHERE {SENT} UNION ALL"
        f" SELECT run_id, date_trunc('minute', sent_at), 1 FROM new_rows WHERE {SENT}",
    ),
    "deleted": (
        "DELETE",
        "OLD TABLE AS old_rows",
        f"SELECT run_id, date_trunc('minute', sent_at) AS minute, -1 AS delta FROM old_rows"
        f" WHERE {SENT}",
    ),
}
# SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text (naive UTC): a minute is its
# first 16 characters.
SQLITE_ADD = (
    "INSERT INTO api_runsentminute (run_id, minute, shard, sent)"
    " SELECT {row}.run_id, substr({row}.sent_at, 1, 16) || ':00', 0, {delta}"
    " WHERE {row}.status = 'sent' AND {row}.sent_at IS NOT NULL"
    " ON CONFLICT (run_id, minute, shard) DO UPDATE SET sent = sent + {delta};"
)
SQLITE_TRIGGERS = {
    "inserted": ("AFTER INSERT ON api_message", SQLITE_ADD.format(row="NEW", delta=1)),
    "updated": (
        "AFTER UPDATE OF status, sent_at ON api_message"
        " WHEN OLD.status IS NOT NEW.status OR OLD.sent_at IS NOT NEW.sent_at",
        SQLITE_ADD.format(row="OLD", delta=-1) + SQLITE_ADD.format(row="NEW", delta=1),
    ),
    "deleted": ("AFTER DELETE ON api_message", SQLITE_ADD.format(row="OLD", delta=-1)),
}
BACKFILL = {
    "postgresql": "INSERT INTO api_runsentminute (run_id, minute, shard, sent)"
    " SELECT run_id, date_trunc('minute', sent_at), 0, count(*) FROM api_message"
    f" WHERE {SENT} GROUP BY 1, 2",
    "sqlite": "INSERT INTO api_runsentminute (run_id, minute, shard, sent)"
    " SELECT run_id, substr(sent_at, 1, 16) || ':00', 0, count(*) FROM api_message"
    f" WHERE {SENT} GROUP BY 1, 2",
}


def install_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for name, (event, referencing, rows) in POSTGRES_TRIGGERS.items():
            schema_editor.execute(
                POSTGRES_FUNCTION.format(name=name, event=event, referencing=referencing, rows=rows)
            )
    elif vendor == "sqlite":
        for name, (when, body) in SQLITE_TRIGGERS.items():
            schema_editor.execute(
                f"CREATE TRIGGER api_message_sent_minute_{name} {when} BEGIN {body} END"
            )
    if vendor in BACKFILL:
        schema_editor.execute(BACKFILL[vendor])


def remove_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for name in POSTGRES_TRIGGERS:
        trigger = f"api_message_sent_minute_{name}"
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON api_message")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}")


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0013_daily_report_sso_identity"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunSentMinute",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("minute", models.DateTimeField()),
                ("shard", models.IntegerField(default=0)),
                ("sent", models.BigIntegerField(default=0)),
                (
                    "run",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sent_minutes",
                        to="api.campaignrun",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "minute", "shard"), name="run_sent_minute_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
