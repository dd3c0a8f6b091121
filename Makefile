# caseledger — the two commands a newcomer needs: `make run` and `make test`.
# Both create .venv and install the project (pip install -e .[dev]) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the API on the embedded SQLite database (./var) with demo data and demo tokens.
run: $(STAMP)
	$(VENV)/bin/caseledger serve --demo

## Run the whole test suite: unit, integration and API tests on SQLite and PostgreSQL.
test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf var .pytest_cache .hypothesis
