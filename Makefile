# caseledger — the two commands a newcomer needs: `make run` and `make test`.
# Both create .venv and install the project (pip install -e .[dev]) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test demo clean prod bench bench-quick failover chaos chromium screenshots

# setup.py builds the verifier's C inner loop (ledger/integrity/_scan.c): rebuilt when it changes.
$(STAMP): pyproject.toml setup.py ledger/integrity/_scan.c ledger/integrity/_scan_pg.c ledger/integrity/_scan.h
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the API on the embedded SQLite database (./var) with demo data and demo tokens.
run: $(STAMP)
	$(VENV)/bin/caseledger serve --demo

## Debian's Chromium for the browser tests (tests/browser drive /usr/bin/chromium; no browser download).
chromium:
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

## Run the whole test suite: unit, integration, API and browser tests on SQLite and PostgreSQL.
test: $(STAMP) chromium
	$(PY) -m pytest

## Production-style: gunicorn API + projection runner + scheduler from the Procfile, supervised (a
## process that dies is restarted with backoff) and stopped together by Ctrl-C or SIGTERM.
## Without CASELEDGER_DATABASE_URL it starts a throwaway PostgreSQL (deleted on exit).
prod: $(STAMP)
	$(PY) -m cli.prod

## Every benchmark, tables printed and saved under var/bench/ (bench-quick: CI-sized).
## Starts a throwaway PostgreSQL unless CASELEDGER_BENCH_PG_DSN or CASELEDGER_TEST_PG_DSN is set.
bench: $(STAMP)
	$(PY) -m bench

bench-quick: $(STAMP)
	$(PY) -m bench --quick

## Failover drill (also part of `make test`): a throwaway primary and synchronous standby on
## loopback, the primary killed under load, the standby promoted; prints the failover time.
failover: $(STAMP)
	$(PY) -m pytest -s -q -p no:cacheprovider tests/failover/test_failover.py

## Chaos drills (a short version is part of `make test`): `make prod` under a write load, each process
## kind killed with kill -9, PostgreSQL restarted (20 s down), as root a full disk under SQLite; after
## each, no acknowledged write lost, verify passes, read models equal a rebuild. Figures: bench/RESULTS.md.
chaos: $(STAMP)
	$(PY) -m pytest -s -q -p no:cacheprovider tests/chaos --chaos full

## Retake the console screenshots the README shows (docs/screenshots/), with the browser tests.
screenshots: $(STAMP) chromium
	CASELEDGER_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest -q -p no:cacheprovider tests/browser

clean:
	rm -rf var .pytest_cache .hypothesis
