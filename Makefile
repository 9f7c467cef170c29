# Comanage: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Quiet unless VERBOSE=1: a progress line per step, and everything again when something fails.
ifeq ($(filter-out 0,$(VERBOSE)),)
PIP_QUIET := --quiet --quiet
else
PIP_QUIET :=
export LIBRARY_LOG_LEVEL ?= INFO
endif
export VERBOSE
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Before anything else: Python itself, then the system packages (installed when root with apt).
NEED_PYTHON = @command -v $(PYTHON) >/dev/null 2>&1 || { echo "make $@ needs Python 3.11 \
($(PYTHON) not found); install with: sudo apt-get install -y python3.11 python3.11-venv \
(or set PYTHON=/path/to/python3.11)" >&2; exit 3; }

.PHONY: run test install migrate demo lint typecheck bench backup restore clean checks mypy-baseline

$(BIN)/python:
	@echo "==> Creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	@$(BIN)/pip install $(PIP_QUIET) --upgrade pip

# Reinstalls when pyproject.toml changes (e.g. after a git pull), not otherwise.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> Installing Python packages into $(VENV) (first run, or pyproject.toml changed: a few minutes)"
	@$(BIN)/pip install $(PIP_QUIET) -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)
	@:

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

## run: install, migrate, load demo data, serve at http://$(HOST):$(PORT) with a Celery worker
run:
	$(NEED_PYTHON)
	@$(PYTHON) scripts/system_deps.py --for run
	@$(MAKE) --no-print-directory install
	@$(BIN)/python scripts/run_dev.py --host '$(HOST)' --port '$(PORT)'

# Locally the test database is kept between runs (--reuse-db; add PYTEST_ARGS=--create-db to
# rebuild it); CI (.ci/run sets CI) creates a fresh database every time.
REUSE_DB := $(if $(CI),,--reuse-db)

## test: install and run the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
## The static gates run beside pytest, not before it: they are mostly one process each (mypy
## the longest) and pytest starts with one worker migrating the run's database while the other
## waits, so side by side they cost the run's wall time little. Their output is printed after
## pytest's, and `make test` fails when either fails.
test:
	$(NEED_PYTHON)
	@$(PYTHON) scripts/system_deps.py --for test
	@$(MAKE) --no-print-directory install
	@gates_log=$$(mktemp); \
	$(MAKE) --no-print-directory $(GATES) $(CHECKS) check-migrations >"$$gates_log" 2>&1 & \
	gates=$$!; \
	echo "==> The static gates run beside pytest; their output follows pytest's"; \
	$(BIN)/python -m pytest -n $${PYTEST_WORKERS:-2} --dist loadgroup $(REUSE_DB) $(PYTEST_ARGS); \
	tests=$$?; \
	wait $$gates; checks=$$?; \
	echo "==> The static gates (ruff, ruff format, mypy, import contracts, deptry, migrations)"; \
	cat "$$gates_log"; rm -f "$$gates_log"; \
	if [ $$checks -ne 0 ]; then echo "make test: a static gate failed (above)" >&2; fi; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; \
	exit $$checks

## checks: the static gates `make test` runs beside pytest, all of them even when one fails
## (the same as the pre-commit hooks in .pre-commit-config.yaml)
## They run side by side (-j; mypy, the longest, alone takes most of the time), each one's output
## kept together (--output-sync).
CHECKS := check-ruff check-format check-types check-imports check-deps
GATES := -k -j --output-sync=target
.PHONY: checks $(CHECKS) check-migrations
checks: install
	@$(MAKE) --no-print-directory $(GATES) $(CHECKS)
check-ruff:
	$(BIN)/python -m ruff check .
check-format:
	$(BIN)/python -m ruff format --check .
check-types:
	$(BIN)/python scripts/mypy_gate.py
check-imports:
	$(BIN)/lint-imports
check-deps:
	$(BIN)/deptry .
# `make test` runs this beside the static gates: the models and the migrations agree.
check-migrations:
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=comanage.settings.test

lint: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

typecheck: install
	$(BIN)/python -m mypy comanage agreements indicators savings adjudication

## mypy-baseline: lower mypy-baseline.json after fixing type errors (it never rises)
mypy-baseline: install
	$(BIN)/python scripts/mypy_gate.py --update

bench: install
	$(BIN)/python bench/run_all.py

backup: install
	$(BIN)/python manage.py backup $(if $(ORG),--organization $(ORG)) --output $${BACKUP_DIR:-backups}

restore: install
	$(BIN)/python manage.py restore $${BACKUP:?set BACKUP=path/to/backup}

clean:
	rm -rf $(VENV) .pytest_cache staticfiles

## prod-stage: the production-shaped stage: production settings, gunicorn (2 workers), a Celery
## worker, a fresh PostgreSQL database and a Redis database of its own (PROD_STAGE_REDIS_URL,
## default db 12, flushed), driven by Chromium and an API client (scripts/ci/production_stage.py)
.PHONY: prod-stage
prod-stage: install
	@$(PYTHON) scripts/system_deps.py --for test
	$(BIN)/python scripts/ci/production_stage.py
