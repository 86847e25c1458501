# Run `make` (or `make help`) to list the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
# The stamp is newer than pyproject.toml once the project and its dev extras are installed.
INSTALLED := $(VENV)/.installed

.PHONY: help install run test lint format messages

help: ## Show this help
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-8s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# pip's log goes to a file: the machine's pip config makes it print harmless warnings.
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the project into $(VENV) (log: $(VENV)/pip-install.log)"
	@$(BIN)/python -m pip install -q -e '.[dev]' > $(VENV)/pip-install.log 2>&1 \
		|| { cat $(VENV)/pip-install.log; exit 1; }
	@touch $@

install: ## Create .venv if missing and install the project with its dev extras
	@rm -f $(INSTALLED)
	@$(MAKE) --no-print-directory $(INSTALLED)

run: $(INSTALLED) ## Upgrade the database, seed demo data if empty, serve on http://127.0.0.1:5000 with the background jobs
	$(FLASK) db upgrade
	$(FLASK) demo seed --if-empty
	@# The background worker (mail, timed result release, message purge) runs beside the server
	@# and stops with it.
	@echo "Mail the portal sends (no MAIL_URL set) is written to instance/mail/"
	$(FLASK) worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(FLASK) run --host 127.0.0.1 --port 5000

test: ## Run the whole suite on SQLite, then on a throwaway PostgreSQL (PYTEST_ARGS=... to pass)
	bash scripts/test.sh $(PYTEST_ARGS)

lint: $(INSTALLED) ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy portal

format: $(INSTALLED) ## Apply ruff's fixes, then format (fixes can leave code to reformat)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The options besides babel.cfg are portal.i18n.EXTRACT_OPTIONS (the catalog test uses them).
messages: $(INSTALLED) ## Extract the strings to translate and merge them into portal/translations (then fill the empty msgstr)
	@pot=$$(mktemp --suffix=.pot); trap 'rm -f $$pot' EXIT; set -o pipefail; \
	$(BIN)/pybabel extract -F babel.cfg --ignore-dirs=".* __pycache__" \
		-k lazy_gettext -k _l -k lazy_pgettext:1c,2 -k _p:1c,2 \
		--no-location --sort-output --omit-header -o $$pot . 2>&1 | { grep -v "^extracting" || true; } && \
	$(BIN)/pybabel update -i $$pot -d portal/translations --no-fuzzy-matching --ignore-obsolete \
		-w 100 2>&1 | { grep -v "^updating" || true; }
