# Task Delay Service: `make run` starts everything, `make test` checks everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-slow lint format bench gateway clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## API (gunicorn) + Celery worker + beat in the foreground; Ctrl-C stops all three.
run: install
	./scripts/run-dev.sh

## ruff, black --check, pytest on SQLite, then pytest on Postgres/Redis when reachable.
test: install
	./scripts/test.sh

## The long fault/load runs (pytest -m slow) on Postgres.
test-slow: install
	./scripts/test.sh --slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/black --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/black .

## A development SMS gateway on :$GATEWAY_PORT, default 9000 (point SMS_GATEWAY_URL at it).
gateway: install
	$(BIN)/python manage.py fake_gateway --port $${GATEWAY_PORT:-9000}

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .data .pytest_cache .ruff_cache
