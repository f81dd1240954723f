"""Postgres: api_message becomes a table partitioned by message id range, one partition per run.

A run's messages are the id range [run_id * 2**32, (run_id + 1) * 2**32) (migration 0006), so
planning can load a run into a bare partition and build its indexes in bulk (api/partitions.py).
Existing rows are moved into one partition per run. The per-table autovacuum settings of
migrations 0002/0004 move to the partitions (a partitioned parent cannot hold them).
SQLite keeps a plain table: nothing happens there.
"""

from django.db import migrations

# Frozen copies of api.partitions' values as of this migration (a migration must not change
# when the app's code does later).
AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 20000,"
    " autovacuum_vacuum_insert_scale_factor = 0.0,"
    " autovacuum_vacuum_insert_threshold = 100000,"
    " autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_limit = 2000,"
    " autovacuum_vacuum_cost_delay = 1"
)
STRIDE = 2**32
DUE = "(next_attempt_at) WHERE status = 'pending'"
LEASE = "(lease_expires_at) WHERE status = 'sending'"


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run("ALTER TABLE api_message RENAME TO api_message_plain")
    run("ALTER TABLE api_message_plain RENAME CONSTRAINT api_message_pkey TO api_message_plain_pkey")
    run("ALTER INDEX message_due_idx RENAME TO message_plain_due_idx")
    run("ALTER INDEX message_lease_idx RENAME TO message_plain_lease_idx")
    run(
        "CREATE TABLE api_message (LIKE api_message_plain INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        " PARTITION BY RANGE (id)"
    )
    run("ALTER TABLE api_message ADD CONSTRAINT api_message_pkey PRIMARY KEY (id)")
    run(f"CREATE INDEX message_due_idx ON api_message {DUE}")
    run(f"CREATE INDEX message_lease_idx ON api_message {LEASE}")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT run_id FROM api_message_plain ORDER BY run_id")
        run_ids = [row[0] for row in cursor.fetchall()]
    for run_id in run_ids:
        name, low, high = f"api_message_r{int(run_id)}", run_id * STRIDE, (run_id + 1) * STRIDE
        run(
            f"CREATE TABLE {name} (LIKE api_message INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
            f" CONSTRAINT {name}_range CHECK (id >= {low} AND id < {high})) WITH ({AUTOVACUUM})"
        )
        run(f"INSERT INTO {name} SELECT * FROM api_message_plain WHERE run_id = {int(run_id)}")
        run(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
        run(f"CREATE INDEX {name}_message_due_idx ON {name} {DUE}")
        run(f"CREATE INDEX {name}_message_lease_idx ON {name} {LEASE}")
        run(f"ALTER TABLE api_message ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")
        run(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    run("DROP TABLE api_message_plain")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run("ALTER TABLE api_message RENAME TO api_message_partitioned")
    run(
        "ALTER TABLE api_message_partitioned RENAME CONSTRAINT api_message_pkey"
        " TO api_message_partitioned_pkey"
    )
    run("ALTER INDEX message_due_idx RENAME TO message_partitioned_due_idx")
    run("ALTER INDEX message_lease_idx RENAME TO message_partitioned_lease_idx")
    run(
        "CREATE TABLE api_message (LIKE api_message_partitioned INCLUDING DEFAULTS"
        f" INCLUDING CONSTRAINTS) WITH ({AUTOVACUUM})"
    )
    run("INSERT INTO api_message SELECT * FROM api_message_partitioned")
    run("ALTER TABLE api_message ADD CONSTRAINT api_message_pkey PRIMARY KEY (id)")
    run(f"CREATE INDEX message_due_idx ON api_message {DUE}")
    run(f"CREATE INDEX message_lease_idx ON api_message {LEASE}")
    run("DROP TABLE api_message_partitioned")  # drops its partitions too


class Migration(migrations.Migration):
    dependencies = [("api", "0006_message_derived_id")]

    operations = [migrations.RunPython(partition, unpartition)]
