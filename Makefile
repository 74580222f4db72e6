# The two commands: `make run` (serve with an embedded default) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: help install run run-pg test test-unit test-integration lint format bench bench-recs load faults fuzz migrate openapi worker clean

help:
	@echo "make run        serve on http://$(HOST):$(PORT) (SQLite + in-process cache/jobs + demo data, or DATABASE_URL/REDIS_URL)"
	@echo "make run-pg     the production shape locally: its own Postgres + Redis in var/dev-services, worker, API"
	@echo "make test       unit + integration tests (Postgres/Redis at DATABASE_URL/REDIS_URL or local; else starts its own)"
	@echo "make lint       ruff, mypy (strict on domain/application), import-linter"
	@echo "make bench      load benchmark against reference apps;  make bench-recs  recommender scale"
	@echo "make faults     mixed load while Redis, Postgres, workers and a table lock fail (own throw-away servers)"
	@echo "make worker     run the SAQ worker (needs REDIS_URL)"

.venv/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --inexact
	@touch $@

install: .venv/.installed

run: install
	APP_ENV=$${APP_ENV:-development} SEED_DEMO_DATA=$${SEED_DEMO_DATA:-true} LOG_JSON=$${LOG_JSON:-false} \
		$(RUN) marketplace serve

run-pg: install
	$(RUN) marketplace dev-services

worker: install
	$(RUN) marketplace worker

migrate: install
	$(RUN) marketplace migrate

test: install
	$(RUN) pytest -q -n 2 --dist loadfile

test-unit: install
	$(RUN) pytest -q tests/unit

test-integration: install
	$(RUN) pytest -n 2 --dist loadfile tests/integration

lint: install
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench
	$(RUN) mypy
	$(RUN) lint-imports

format: install
	$(RUN) ruff format src tests bench
	$(RUN) ruff check --fix src tests bench

openapi: install
	$(RUN) marketplace openapi -o openapi.json

bench: install
	$(UV) sync --frozen --inexact --group bench
	$(RUN) --group bench python bench/run.py --rounds 3 --duration 5

bench-recs: install
	$(RUN) python bench/recs_scale.py --sizes 100k,1M,10M,10Mx1M --runs 3

load: install
	$(RUN) python bench/load.py

# FAULTS_ARGS="--short" for the quick version; see `python -m bench.faults --help`.
faults: install
	$(RUN) python -m bench.faults $(FAULTS_ARGS)

fuzz: install
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-500} HOSTILE_MAX_EXAMPLES=$${HOSTILE_MAX_EXAMPLES:-5000} \
		HOSTILE_REPORT=$${HOSTILE_REPORT:-var/hostile-report.json} \
		$(RUN) pytest tests/integration/test_fuzz_openapi.py tests/integration/test_hostile_bodies.py

clean:
	rm -rf .venv var .mypy_cache .ruff_cache
