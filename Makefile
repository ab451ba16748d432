# The README's commands. `make run` and `make test` install what is missing (uv included).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# `make ingest PATH=docs/` names the folder to ingest, but PATH is also the shell's search path,
# and make hands a variable given on its command line to every recipe: no command would be
# found. So a PATH given there is taken as the folder (INGEST_DIR), and PATH is set back to the
# one make was started with: what $(shell) still sees up to GNU make 4.3; from 4.4 on $(shell)
# sees the given PATH too (printenv is not found and prints nothing), so a usual search path
# stands in. DOCS=docs/ says the same without the trick.
ifeq ($(origin PATH),command line)
INGEST_DIR := $(PATH)
override PATH := $(or $(shell printenv PATH 2>/dev/null),$(CURDIR)/.venv/bin:$(CURDIR)/.tools/bin:$(HOME)/.local/bin:$(HOME)/.cargo/bin:/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin)
endif
INGEST_DIR := $(or $(DOCS),$(INGEST_DIR))

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

# Plugin packages (directories) to keep installed: `uv sync` removes whatever uv.lock does not
# name, so `make install` installs these, editable, after it. By default every package in
# plugins/ (git-ignored: put a plugin's checkout, or a symlink to it, there); `make test`
# collects their tests/ (testpaths in pyproject.toml). PLUGINS="../a ../b" names others.
PLUGINS ?= $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
LANGGRAPH_PORT ?= 2024

.PHONY: help install run test lint format typecheck check clean bench bench-quick retention \
	ingest langgraph-dev lock add
.PHONY: dev security fuzz

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.tools/bin/uv:  # no uv on PATH: install it into .tools/ (a venv, else pip --user)
	@if python3 -m venv .tools >/dev/null 2>&1; then \
	  .tools/bin/python -m pip install --quiet --disable-pip-version-check uv; \
	else \
	  python3 -m pip install --quiet --user uv && mkdir -p .tools/bin && \
	  ln -sf "$$(python3 -m site --user-base)/bin/uv" .tools/bin/uv; \
	fi

install: $(UV) ## Install the locked dependencies into .venv, then the PLUGINS
	# Bytecode compiled once here (6 s, then 0.3 s a sync): else every start compiles it
	# again where PYTHONDONTWRITEBYTECODE is set, as in containers and on CI machines.
	$(UV) sync --frozen --compile-bytecode
	$(if $(strip $(PLUGINS)),$(UV) pip install --python .venv/bin/python $(addprefix -e ,$(PLUGINS)))

# `make run` and `make dev`: the server replaces the recipe's shell (exec), so it is make's own
# child, with .venv's bin first on PATH as `uv run` would set it (`install` synced .venv; a uv
# in between would have to pass each signal on, which a uv before 0.4 did not). GNU make passes
# a SIGTERM it gets on to its children; a SIGINT, SIGHUP or SIGQUIT sent to make alone (not to
# its process group, as a terminal's Ctrl+C is) it passes on to none and waits for them. So on
# Linux a watcher beside the server reads make's /proc status every half second: once make has
# taken one of those (its handler resets the signal to the default, so the bit leaves SigCgt),
# or make is gone (SIGKILL), the server gets SIGTERM and drains as under any SIGTERM.
define SERVE
if [ -r /proc/$$PPID/status ]; then \
  ( make_pid=$$PPID server_pid=$$$$; \
    caught() { while read -r key value; do \
      [ "$$key" = SigCgt: ] && echo $$(( 0x$$value & 7 )); done </proc/$$make_pid/status; }; \
    before=$$(caught); \
    while kill -0 $$server_pid && [ "$$(caught)" = "$$before" ]; do sleep 0.5; done; \
    kill -TERM $$server_pid ) >/dev/null 2>&1 & \
fi; \
exec env VIRTUAL_ENV='$(CURDIR)/.venv' PATH='$(CURDIR)/.venv/bin':"$$PATH" python -m server $(1)
endef

run: install ## Serve on HOST:PORT (default 127.0.0.1:8000) with the settings from env/.env
	@$(call SERVE)

dev: install ## `make run` restarted on every change under graph/, nodes/, server/
	@$(call SERVE,--reload)

test: install ## Run the whole test suite
	$(UV) run --frozen pytest

lint: install ## ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

# Formats first, fixes, formats what the fixes changed, then lists what ruff cannot fix (what
# `make lint` fails on) without failing: a lint left to fix by hand stops nothing, and a file
# ruff cannot parse is named in that list, the other files formatted all the same.
format: install ## Apply ruff's formatting and fixes, then list what is left to fix by hand
	-$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix --exit-zero --silent .
	-$(UV) run --frozen ruff format --quiet .
	$(UV) run --frozen ruff check --exit-zero --output-format concise .

typecheck: install ## mypy --strict on graph/, nodes/, server/, bench/, tests/
	$(UV) run --frozen mypy

security: install ## bandit on graph/, nodes/, server/ (settings: [tool.bandit] in pyproject.toml)
	$(UV) run --frozen bandit -q -c pyproject.toml -r graph nodes server

FUZZ_EXAMPLES ?= 300
fuzz: install ## Schemathesis: FUZZ_EXAMPLES (300) cases per route and mode from a random seed
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(UV) run --frozen pytest tests/integration/test_openapi_fuzz.py

check: lint typecheck security test ## Lint, types, the security scan and tests: what CI runs

clean: ## Remove the virtual environments and caches
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache

# The benchmark (bench/, its tests in tests/unit/bench/ and tests/integration/test_bench.py):
# the service and its comparators pinned to core 0, the fake upstream (tests/fakes/) and the
# load generator on core 1; PostgreSQL and Redis on 127.0.0.1 (the database `bench` and its
# siblings are recreated; Redis db 14, prefix `bench`). BENCH_PEERS=1 adds LiteLLM's proxy
# (installed into .bench/peers/ on first use); BENCH_ARGS passes options
# (`python -m bench --help`), e.g. BENCH_ARGS='--threads 5000 --json out.json'.
bench: install ## The benchmark: service vs one-node LangGraph floor (and LiteLLM: BENCH_PEERS=1)
	$(UV) run --frozen python -m bench $(BENCH_ARGS)

bench-quick: install ## The benchmark's short form (under two minutes: C=1 and 8, one repeat)
	$(UV) run --frozen python -m bench --quick $(BENCH_ARGS)

OLDER_THAN ?= 30d
retention: install ## Delete threads idle for OLDER_THAN (default 30d); DRY_RUN=1 only lists them
	$(UV) run --frozen python -m server.stores.retention --older-than $(OLDER_THAN) $(if $(DRY_RUN),--dry-run,)

# The venv's python by its absolute path (no search path needed); `make install` first only
# when there is no venv yet. VENV_PYTHON names another interpreter (the tests pass their own).
VENV_PYTHON ?= $(CURDIR)/.venv/bin/python
ingest: ## Ingest documents: make ingest PATH=docs/ (or DOCS=docs/) [NAMESPACE=<key id>] [PRUNE=1]
	@test -n '$(INGEST_DIR)' || { echo "usage: make ingest PATH=docs/ (or DOCS=docs/) [NAMESPACE=<key id>] [PRUNE=1]" >&2; exit 2; }
	@test -x '$(VENV_PYTHON)' || $(MAKE) install
	'$(VENV_PYTHON)' -m server.knowledge.cli '$(INGEST_DIR)' $(if $(NAMESPACE),--namespace '$(NAMESPACE)') $(if $(PRUNE),--prune)

# Everything stays on this machine: no CLI analytics, no version check, no LangSmith tracing or
# key, no browser tab on smith.langchain.com (what tests/integration/test_langgraph_dev.py sets).
# langgraph dev lets .env override the environment, so a .env that turns tracing on, or names a
# LangGraph licence that reports usage, is refused rather than obeyed.
langgraph-dev: install ## Run `langgraph dev` on 127.0.0.1:LANGGRAPH_PORT (2024); nothing leaves the machine
	@if grep -qsiE '^\s*(export\s+)?(LANGSMITH_TRACING|LANGCHAIN_TRACING_V2)\s*=\s*["'\'']?(true|1)' .env \
	  || grep -qsE '^\s*(export\s+)?(LANGGRAPH_CLOUD_LICENSE_KEY|LANGSMITH_CONTROL_PLANE_API_KEY)\s*=\s*\S' .env; then \
	  echo "make langgraph-dev: .env turns on LangSmith tracing or a licence key, which would" \
	    "send data off this machine (langgraph dev lets .env win); remove it there." >&2; exit 1; \
	fi
	env -u LANGSMITH_API_KEY -u LANGCHAIN_API_KEY -u LANGSMITH_ENDPOINT -u LANGCHAIN_ENDPOINT \
	  -u LANGGRAPH_CLOUD_LICENSE_KEY -u LANGSMITH_CONTROL_PLANE_API_KEY \
	  LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true \
	  LANGSMITH_TRACING=false LANGCHAIN_TRACING_V2=false \
	  $(UV) run --frozen langgraph dev --host 127.0.0.1 --port $(LANGGRAPH_PORT) --no-browser

lock: $(UV) ## Update uv.lock after editing the dependencies in pyproject.toml
	$(UV) lock

add: $(UV) ## Add a dependency to pyproject.toml and uv.lock: make add PKG='name>=1.2' [GROUP=dev]
	@test -n "$(PKG)" || { echo "usage: make add PKG='name>=1.2' [GROUP=dev]" >&2; exit 2; }
	$(UV) add $(if $(GROUP),--group $(GROUP)) '$(PKG)'
	$(if $(strip $(PLUGINS)),$(UV) pip install --python .venv/bin/python $(addprefix -e ,$(PLUGINS)))
