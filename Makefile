# The verbs a person types. Every target is idempotent: run any of them again at any time.
SHELL := /bin/bash
HERE := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXPERIMENT ?= digits_mlp
ARGS ?=

.DEFAULT_GOAL := help
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

WORKERS ?= 2
TRIALS ?= 12
BACKEND ?= docker

.PHONY: help install provision image db db-down launch demo up down test test-unit test-gpu lint format train bench clean

help: ## Show this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Make .venv with hpo and its trainer and dev extras

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[trainer,dev]'
	@touch $@

provision: ## Debian without Docker: install and start the engine, Compose v2, buildx (root)
	$(SUDO) bash scripts/provision.sh

image: install ## Build the trainer image (wheelhouse, offline base when none can be pulled)
	$(BIN)/hpo image build

db: install ## Start the managed Postgres (idempotent); `make db-down` stops it, data kept
	$(BIN)/hpo db up

db-down: install ## Stop the managed Postgres; its data volume is kept
	$(BIN)/hpo db down

launch: install ## A study: make launch WORKERS=2 TRIALS=12 BACKEND=docker|local ARGS="..."
	$(BIN)/hpo launch --backend $(BACKEND) --workers $(WORKERS) --trials $(TRIALS) --experiment $(EXPERIMENT) $(ARGS)

demo: ## A newcomer's first run: install, images, 4 workers x 24 trials, live view, then the report
	@SECONDS=0; $(MAKE) --no-print-directory install image \
	&& $(BIN)/hpo launch --workers 4 --trials 24 --study demo-$$(date +%Y%m%d-%H%M%S) $(ARGS) \
	; status=$$?; echo "make demo: $$SECONDS s from start to report"; exit $$status

# The compose stack runs as the person typing (files in hpo-runs/ stay theirs), in the socket's group.
COMPOSE_ENV = HPO_UID=$$(id -u) HPO_GID=$$(id -g) DOCKER_GID=$$(stat -c %g /var/run/docker.sock)
# `make up` passes on only the knobs make itself was given (`make up WORKERS=4`): the environment
# outranks .env for compose, so passing make's defaults would silently undo a user's .env.
given = $(if $(filter command line environment,$(origin $(1))),$(2)="$($(1))")
STACK_KNOBS = $(call given,WORKERS,HPO_WORKERS) $(call given,TRIALS,HPO_TRIALS) \
	$(call given,EXPERIMENT,HPO_EXPERIMENT) $(call given,ARGS,HPO_ARGS)

# The Postgres image is one that is here (built offline if need be), unless the environment or
# .env names one.
up: image ## The compose stack: Postgres, one study (.env, or WORKERS, TRIALS...), optuna-dashboard
	mkdir -p hpo-runs .hpo-compose
	if [ -z "$${POSTGRES_IMAGE:-}" ] && ! grep -qs '^ *POSTGRES_IMAGE=' .env; then \
		POSTGRES_IMAGE=$$($(BIN)/hpo image postgres) || exit; export POSTGRES_IMAGE; fi; \
	since=$$(date +%s); $(COMPOSE_ENV) $(STACK_KNOBS) docker compose up -d && \
		$(HERE)scripts/await-study.sh "$$since"
	@echo "dashboard: http://$$(docker compose port dashboard 8080)/dashboard/  study progress: docker compose logs -f orchestrator"

down: ## Stop the compose stack and its workers; the data volume is kept (docker compose down -v deletes it)
	$(COMPOSE_ENV) docker compose down

test-unit: install ## Fast tests: no services, seconds
	$(BIN)/python -m pytest tests/unit -m "not slow"

test: install ## Every test, real services included (needs a running Docker engine)
	$(BIN)/python -m pytest tests/unit -n auto  # no services: one process per core (~1 min less on 2)
	$(BIN)/python -m pytest tests --ignore=tests/unit

test-gpu: install ## Training on a GPU (tests/gpu; skipped where torch sees none, as in CI)
	$(BIN)/python -m pytest tests/gpu -rs

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train: install ## One training run: make train EXPERIMENT=digits_mlp ARGS="model.hidden_dim=256"
	$(BIN)/python -m trainer.train experiment=$(EXPERIMENT) $(ARGS)

bench: install ## Benchmarks: ratios measured side by side in one run
	$(BIN)/python bench/train.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/parallel.py
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/entropy.py

clean: ## Remove build leftovers and local run output (keeps .venv)
	rm -rf build dist *.egg-info outputs lightning_logs .pytest_cache .ruff_cache .mypy_cache
