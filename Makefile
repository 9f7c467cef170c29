# Comanage: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate demo lint typecheck bench backup restore clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

## run: install, migrate, load demo data, serve at http://127.0.0.1:8000 with a Celery worker
run: demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_logins
	$(BIN)/python scripts/run_dev.py

## test: install and run the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
test: install
	$(BIN)/python -m ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=comanage.settings.test
	$(BIN)/python -m pytest -n $${PYTEST_WORKERS:-2} --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

typecheck: install
	$(BIN)/python -m mypy comanage agreements indicators savings adjudication

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
	$(BIN)/python scripts/ci/production_stage.py
