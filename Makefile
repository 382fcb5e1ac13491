# The template repo's own tasks. The generated project has its own Makefile (make install/test/dev).
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD ?= build
HOST ?= 127.0.0.1
PORT ?= 8000
TEMPLATE := {{cookiecutter.project_slug}}
# What `cookiecutter --no-input` names the project (project_name "Acme Service").
SLUG := acme-service
TEST_BAKE := $(BUILD)/.test-env
DEMO := $(BUILD)/$(SLUG)

.PHONY: help test lint lock demo docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.requirements: requirements-test.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

# The baked default project's dependencies at its uv.lock's versions, installed once into the
# shared .venv (the project not editable: each test bakes its own copy and puts that copy's src/
# first on PYTHONPATH).
$(VENV)/.project-deps: $(VENV)/.requirements $(TEMPLATE)/pyproject.toml $(wildcard $(TEMPLATE)/.uv-locks/*.lock) cookiecutter.json
	rm -rf $(TEST_BAKE)
	$(BIN)/cookiecutter --no-input --output-dir $(TEST_BAKE) .
	$(BIN)/uv export --quiet --project '$(TEST_BAKE)/$(SLUG)' --frozen --extra dev --no-emit-project \
	  --output-file '$(TEST_BAKE)/requirements.txt'
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r '$(TEST_BAKE)/requirements.txt'
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps '$(TEST_BAKE)/$(SLUG)'
	touch $@

test: $(VENV)/.project-deps ## bake every option set and run all template tests (the README's test command)
	$(BIN)/python -m pytest -n auto --durations=10 tests/

# One uv.lock per python_version answer, in $(TEMPLATE)/.uv-locks/ (tests/locking.py says why).
lock: $(VENV)/.requirements ## after editing the baked pyproject.toml: rewrite its uv.lock for every python_version
	$(BIN)/python -m tests.locking

lint: $(VENV)/.requirements ## ruff, ruff format --check and mypy --strict over hooks/ and tests/
	$(BIN)/ruff check hooks tests
	$(BIN)/ruff format --check hooks tests
	$(BIN)/mypy hooks tests

# `exec`: the service replaces the shell, so the SIGTERM make forwards (or Ctrl-C) reaches it
# directly and it stops its embedded PostgreSQL and Redis on the way out.
demo: $(VENV)/.requirements ## bake the defaults into build/ and serve them on 127.0.0.1:8000 (PORT=... to change)
	rm -rf '$(DEMO)'
	$(BIN)/cookiecutter --no-input --output-dir '$(BUILD)' .
	$(MAKE) -C '$(DEMO)' install
	cd '$(DEMO)' && exec .venv/bin/$(SLUG) dev --host '$(HOST)' --port '$(PORT)'

docs: $(VENV)/.project-deps ## serve the template's docs site (mkdocs.yml over docs/) on http://127.0.0.1:8001
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

clean: ## remove build/ and .venv
	rm -rf '$(BUILD)' '$(VENV)'
