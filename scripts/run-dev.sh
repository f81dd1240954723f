#!/usr/bin/env bash
# Start the API (gunicorn), a Celery worker and beat in the foreground; Ctrl-C stops all three.
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

pids=()
stop() {
  # Ignore further INT/TERM: Ctrl-C (or `timeout`) signals the whole process group, and a second
  # signal must not cut the shutdown short and leave a worker behind.
  trap '' INT TERM
  trap - EXIT
  echo "Stopping..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  # Give each a graceful shutdown (a worker finishes its batch), then make sure nothing is left.
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    if [ "$alive" = 0 ]; then break; fi
    sleep 0.5
  done
  for pid in "${pids[@]}"; do
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

$BIN/gunicorn Work.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --access-logfile - --graceful-timeout 5 &
pids+=($!)
$BIN/celery -A Work worker --loglevel INFO --concurrency 2 &
pids+=($!)
$BIN/celery -A Work beat --loglevel INFO &
pids+=($!)

# Credentials in URLs never reach the console or the logs.
mask_url() { sed -E 's#://([^:/@]*):[^@]*@#://\1:***@#' <<<"$1"; }
DB_SHOWN=$(mask_url "${DATABASE_URL:-}")
BROKER_SHOWN=$(mask_url "${CELERY_BROKER_URL:-}")

sleep 1
cat <<TXT

  Task Delay Service is running.
    API       http://127.0.0.1:$PORT/api/
    Docs      http://127.0.0.1:$PORT/docs/   (sign in with the superuser; "Authorize" with a token)
    Schema    http://127.0.0.1:$PORT/api/schema/
    Admin     http://127.0.0.1:$PORT/admin/
  Get a token:
    curl -s -X POST http://127.0.0.1:$PORT/api/token/ -H 'Content-Type: application/json' \\
         -d '{"username": "<user>", "password": "<password>"}'
  Database: ${DB_SHOWN:-SQLite (.data/db.sqlite3)}   Broker: ${BROKER_SHOWN:-filesystem (.data/broker)}
  SMS: ${SMS_GATEWAY_URL:-console provider (messages are logged, not sent)}
  Ctrl-C stops everything.

TXT
# Whichever process ends first (or Ctrl-C) stops the rest.
wait -n
