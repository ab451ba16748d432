# The README's commands. `make run` and `make test` install what is missing (uv included).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

.PHONY: help install run test lint format typecheck check clean bench retention

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:  # no uv on PATH: install it into .tools/ (a venv, else pip --user)
	@if python3 -m venv .tools >/dev/null 2>&1; then \
	  .tools/bin/python -m pip install --quiet --disable-pip-version-check uv; \
	else \
	  python3 -m pip install --quiet --user uv && mkdir -p .tools/bin && \
	  ln -sf "$$(python3 -m site --user-base)/bin/uv" .tools/bin/uv; \
	fi

install: $(UV) ## Install the locked dependencies into .venv
	$(UV) sync --frozen

run: install ## Serve on HOST:PORT (default 127.0.0.1:8000) with the settings from env/.env
	$(UV) run --frozen python -m server

test: install ## Run the whole test suite
	$(UV) run --frozen pytest

lint: install ## ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install ## Apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

typecheck: install ## mypy --strict on graph/, nodes/, server/
	$(UV) run --frozen mypy

check: lint typecheck test ## Lint, types and tests: what CI runs

clean: ## Remove the virtual environments and caches
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache

bench: install ## Print the service's overhead against direct calls to a fake provider
	$(UV) run --frozen python -m tests.bench.overhead

OLDER_THAN ?= 30d
retention: install ## Delete threads idle for OLDER_THAN (default 30d); DRY_RUN=1 only lists them
	$(UV) run --frozen python -m server.ops.retention --older-than $(OLDER_THAN) $(if $(DRY_RUN),--dry-run,)
