#!/usr/bin/env bash
# Lint, then the suite on SQLite, then on Postgres (and Redis) when they are reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MARK="not slow and not chaos"
[ "${1:-}" = "--slow" ] && MARK="slow and not chaos"

# pytest exits 5 when a marker selects nothing (e.g. no Postgres-only slow test ran): not a failure.
run_pytest() {
  local code=0
  "$BIN/pytest" -m "$MARK" -p no:cacheprovider "$@" || code=$?
  [ "$code" -eq 0 ] || [ "$code" -eq 5 ] || exit "$code"
}

$BIN/ruff check .
$BIN/black --check .
$BIN/python manage.py makemigrations --check --dry-run >/dev/null || {
  echo "Model changes without a migration: run manage.py makemigrations"; exit 1; }

# Tests sign with a key of their own, never the checkout's .data/secret_key.
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-test-only-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d " \n")}"

PG_URL="${DATABASE_URL:-}"
case "$PG_URL" in
  postgres*) ;;
  *) PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" ;;
esac

if [ "$MARK" != "slow" ]; then
  echo "== pytest on SQLite =="
  DATABASE_URL="" run_pytest
fi

if $BIN/python - "$PG_URL" <<'PY'
import sys
import psycopg
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://"), connect_timeout=3).close()
except Exception as exc:
    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    print(f"Postgres not usable at {sys.argv[1]} ({reason}): integration tests skipped.")
    print("The database must exist (createdb it); pytest creates test_<name> beside it.")
    sys.exit(1)
PY
then
  echo "== pytest on Postgres =="
  DATABASE_URL="$PG_URL" run_pytest
elif [[ "${DATABASE_URL:-}" == postgres* ]]; then
  echo "DATABASE_URL points at a Postgres that does not answer."; exit 1
elif [ -n "${TEST_POSTGRES_URL:-}" ]; then
  echo "TEST_POSTGRES_URL is set but not usable."; exit 1
fi

# The chaos suite (api/tests/chaos/): real gunicorn, Celery workers and beat, a fault-injecting
# gateway, on a Postgres cluster and a Redis server of its own (initdb'd into a temporary folder,
# ports 18401-18404) that it kills and restarts. Once, not per database backend; a few minutes
# at the small size (CHAOS_SIZE=large with --slow). It skips, saying why, without the binaries.
echo "== chaos suite (its own Postgres and Redis) =="
if [ "$MARK" = "slow and not chaos" ]; then
  CHAOS_SIZE=large MARK="chaos" run_pytest api/tests/chaos
else
  MARK="chaos" run_pytest api/tests/chaos
fi
