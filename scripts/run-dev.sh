#!/usr/bin/env bash
# Start the API (gunicorn), a Celery worker and beat (the Procfile) in the foreground; Ctrl-C
# stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# Values from .env fill in whatever the environment does not already set.
if [ -f .env ]; then
  while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    [ -z "${!key+x}" ] && export "$key=$value"
  done < .env
fi
export PORT="${PORT:-8000}"

$BIN/python manage.py migrate --noinput
$BIN/python manage.py collectstatic --noinput -v 0
$BIN/python manage.py ensure_superuser

# Credentials in URLs never reach the console or the logs.
mask_url() { sed -E 's#://([^:/@]*):[^@]*@#://\1:***@#' <<<"$1"; }
DB_SHOWN=$(mask_url "${DATABASE_URL:-}")
BROKER_SHOWN=$(mask_url "${CELERY_BROKER_URL:-}")

cat <<TXT

  Task Delay Service is running.
    API       http://127.0.0.1:$PORT/api/
    Docs      http://127.0.0.1:$PORT/docs/   ("Authorize" with a token to try the API)
    Schema    http://127.0.0.1:$PORT/api/schema/
    Admin     http://127.0.0.1:$PORT/admin/
  Get a token:
    curl -s -X POST http://127.0.0.1:$PORT/api/token/ -H 'Content-Type: application/json' \\
         -d '{"username": "<user>", "password": "<password>"}'
  Database: ${DB_SHOWN:-SQLite (.data/db.sqlite3)}   Broker: ${BROKER_SHOWN:-filesystem (.data/broker)}
  SMS: ${SMS_GATEWAY_URL:-console provider (messages are logged, not sent)}
  Ctrl-C stops everything.

TXT
# The Procfile's web, worker and beat under honcho: prefixed output, and whichever process ends
# first (or Ctrl-C) stops the rest (SIGTERM to each process group, SIGKILL after 5 s).
# The environment above already holds .env's values, so honcho reads no env file itself.
export PATH="$PWD/$BIN:$PATH"
exec $BIN/honcho start --env /dev/null --port "$PORT" web worker beat
