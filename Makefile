# Everything a fresh machine needs, from Python 3.11+ and make alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MO := locales/vi/LC_MESSAGES/coso.mo locales/en/LC_MESSAGES/coso.mo

.PHONY: help install run test lint typecheck i18n-extract i18n-compile db-upgrade demo bench clean

help:
	@echo "make run      set up, migrate, load demo data if empty, start the bot (web chat on :8080)"
	@echo "make test     set up and run lint, type checks and the whole test suite"
	@echo "make bench    run the benchmarks (figures go to docs/performance.md)"
	@echo "make i18n-extract / i18n-compile   refresh / compile the translation catalogs"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

locales/%/LC_MESSAGES/coso.mo: locales/%/LC_MESSAGES/coso.po $(STAMP)
	$(BIN)/pybabel compile -d locales -D coso -l $* >/dev/null

i18n-compile: $(MO)

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k t -k plural:1,2 -k _ -k ngettext:1,2 --sort-by-file \
		--no-wrap --project=coso -o locales/coso.pot bot storage wording
	$(BIN)/pybabel update --no-fuzzy-matching -i locales/coso.pot -d locales -D coso --no-wrap --ignore-obsolete

db-upgrade: $(STAMP)
	$(BIN)/coso db upgrade

run: $(STAMP) i18n-compile
	$(BIN)/coso run --demo-if-empty

demo: $(STAMP) i18n-compile
	$(BIN)/coso demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist): most of a test's time is spent waiting on the doubles and the
# bot, so two at once take about half the time on a 2-core machine.
TEST_WORKERS ?= 2

test: $(STAMP) i18n-compile lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: $(STAMP) i18n-compile
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(MO)
