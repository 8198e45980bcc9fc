# The two commands a new user needs: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HTMX_VERSION := 2.0.11
HTMX_SHA256 := d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717
HTMX := app/static/vendor/htmx.min.js
# Gets the browser and PostgreSQL server the tests need, then runs the command after `--`.
SETUP := $(PYTHON) .ci/setup
AXE_VERSION := 4.14.1
AXE_SHA256 := 29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
AXE := e2e/vendor/axe.min.js

.PHONY: help demo test install vendor lint typecheck unit unit-postgres e2e e2e-run bench serve migrate seed i18n clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/portal: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/portal $(HTMX) ## create .venv and install the portal with its dev tools

$(HTMX):
	@# The pinned htmx release from the npm registry, checked against its known SHA-256.
	@mkdir -p $(dir $(HTMX))
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null \
	  && tar xzf htmx.org-$(HTMX_VERSION).tgz package/dist/htmx.min.js \
	  && echo "$(HTMX_SHA256)  package/dist/htmx.min.js" | sha256sum --check --quiet \
	  && cp package/dist/htmx.min.js $(CURDIR)/$(HTMX) && rm -rf $$tmp
	@echo "htmx $(HTMX_VERSION) fetched and verified"

$(AXE):
	@# axe-core for the accessibility tests only (never served): pinned, SHA-256 checked.
	@mkdir -p $(dir $(AXE))
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
	  && tar xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js \
	  && echo "$(AXE_SHA256)  package/axe.min.js" | sha256sum --check --quiet \
	  && cp package/axe.min.js $(CURDIR)/$(AXE) && rm -rf $$tmp
	@echo "axe-core $(AXE_VERSION) fetched and verified"

vendor: $(HTMX) ## fetch pinned front-end files (htmx), integrity checked

demo: install ## migrate, seed the demo clinic, serve http://localhost:8000 and print sign-in links
	$(BIN)/portal demo

serve: install ## serve without demo sign-in (PORTAL_* settings apply)
	$(BIN)/portal serve

lint: install ## ruff, ruff format --check, mypy
	$(BIN)/ruff check . .ci/setup
	$(BIN)/ruff format --check . .ci/setup
	$(BIN)/mypy

unit: install ## unit and web tests on SQLite
	env -u PORTAL_TEST_POSTGRES_URL $(BIN)/pytest tests -q

unit-postgres: ## unit and web tests on PostgreSQL (PORTAL_TEST_POSTGRES_URL, else a throwaway one)
	@$(SETUP) --postgres -- $(BIN)/pytest tests -q

e2e: ## end-to-end tests in Chromium (PORTAL_CHROMIUM, else one installed), phone viewport
	@$(SETUP) --browser -- $(MAKE) --no-print-directory e2e-run

e2e-run: install $(AXE)
	$(BIN)/pytest e2e -q -p no:cacheprovider

test: ## everything CI runs, after getting what it needs: lint, SQLite, PostgreSQL, e2e
	@$(SETUP) -- $(MAKE) --no-print-directory lint unit unit-postgres e2e

bench: install ## page weight and load figures against bare Litestar
	$(BIN)/python -m bench.page_weight
	$(BIN)/python -m bench.load

i18n: install ## extract strings and update the catalogs (then translate app/locales/*/messages.po)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -k gettext -k ngettext:1,2 -o app/locales/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i app/locales/messages.pot -d app/locales -D messages --no-fuzzy-matching --ignore-obsolete --width 100

clean: ## remove the virtualenv, fetched files and local data
	rm -rf $(VENV) app/static/vendor var
