#!/bin/sh
# Container entrypoint: wait (bounded) for the database, then exec the command.
#   entrypoint.sh web | worker | beat | gateway   -> that line of the Procfile
#   entrypoint.sh migrate                         -> apply migrations, create the superuser
#   entrypoint.sh <anything else>                 -> run it as given (e.g. python manage.py shell)
# Nothing destructive runs here; migrations run only in the one-shot `migrate` service/Job.
set -eu

wait_for_database() {
  timeout="${DATABASE_WAIT_SECONDS:-60}"
  python - "$timeout" <<'PY'
import sys, time
import django
from django.db import connection
from django.db.utils import OperationalError

django.setup()
deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        connection.ensure_connection()
        break
    except OperationalError as exc:
        if time.monotonic() > deadline:
            # psycopg's message names host, port and database, never the password.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            sys.exit(f"database not reachable after {sys.argv[1]} s: {reason}")
        print("waiting for the database...", flush=True)
        time.sleep(1)
PY
}

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-Work.settings}"

case "${1:-web}" in
  migrate)
    wait_for_database
    python manage.py migrate --noinput
    exec python manage.py ensure_superuser
    ;;
  web|worker|beat|gateway)
    wait_for_database
    line=$(grep -E "^$1:" Procfile | cut -d: -f2-)
    exec sh -c "exec $line"
    ;;
  *)
    exec "$@"
    ;;
esac
