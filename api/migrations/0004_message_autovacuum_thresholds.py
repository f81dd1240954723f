"""Postgres: vacuum the message table by absolute thresholds, not by a share of its size.

With a scale factor, the dead rows allowed between vacuums grow with the message history (1 %
of 50M rows is 500,000 dead tuples in front of every claim). Fixed thresholds keep the claim
path clean whatever the table's size (bench/README.md, "Autovacuum").
"""

from django.db import migrations

from api.migrations._postgres import postgres_only

TUNE = (
    "ALTER TABLE api_message SET ("
    " autovacuum_vacuum_scale_factor = 0.0,"
    " autovacuum_vacuum_threshold = 20000,"
    " autovacuum_vacuum_insert_scale_factor = 0.0,"
    " autovacuum_vacuum_insert_threshold = 100000,"
    " autovacuum_analyze_scale_factor = 0.02,"
    " autovacuum_vacuum_cost_limit = 2000,"
    " autovacuum_vacuum_cost_delay = 1)"
)
BACK = (
    "ALTER TABLE api_message SET ("
    " autovacuum_vacuum_scale_factor = 0.01,"
    " autovacuum_vacuum_threshold = 5000,"
    " autovacuum_vacuum_insert_scale_factor = 0.05)"
)



class Migration(migrations.Migration):
    dependencies = [("api", "0003_message_fk_indexes")]

    operations = [migrations.RunPython(postgres_only(TUNE), postgres_only(BACK))]
