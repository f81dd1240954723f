"""`field__any_of=[...]`: membership in a list passed as ONE parameter.

Django's `__in` sends one parameter per value; for the hot paths (500 ids per batch) building
and binding those costs more than the query. Postgres takes an array (`= ANY(%s)`), SQLite a
JSON document (`IN (SELECT value FROM json_each(%s))`); both have no length limit either.
"""

import json

from django.db.models import Field, Lookup


@Field.register_lookup
class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, *rhs_params]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _, rhs_params = self.process_rhs(compiler, connection)
        values = json.dumps([v if isinstance(v, int | float) else str(v) for v in rhs_params[0]])
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params, values]
