"""Postgres: vacuum the message table early and often.

Every claim and every outcome rewrites message rows (status is in the partial indexes' predicates,
so no update is HOT): a table left full of dead rows makes claims ~10x slower. The defaults wait
for 20 % of the table to be dead; at a million rows that is 200,000 dead tuples between vacuums.
"""

from django.db import migrations

from api.migrations._postgres import postgres_only

TUNE = (
    "ALTER TABLE api_message SET ("
    " autovacuum_vacuum_scale_factor = 0.01,"
    " autovacuum_vacuum_threshold = 5000,"
    " autovacuum_vacuum_insert_scale_factor = 0.05,"
    " autovacuum_analyze_scale_factor = 0.02,"
    " autovacuum_vacuum_cost_limit = 2000,"
    " autovacuum_vacuum_cost_delay = 1)"
)
RESET = (
    "ALTER TABLE api_message RESET (autovacuum_vacuum_scale_factor,"
    " autovacuum_vacuum_threshold, autovacuum_vacuum_insert_scale_factor,"
    " autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_limit,"
    " autovacuum_vacuum_cost_delay)"
)



class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(postgres_only(TUNE), postgres_only(RESET))]
