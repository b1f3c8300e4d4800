# Paperclip for Django: everyday tasks. `make help` lists them.
#
# Every target that needs Python depends on the `.venv/.installed` stamp, so a fresh clone needs
# only `make run` (or `make test`): the virtualenv is created and the locked, hash-checked
# dependencies installed on first use, and again whenever requirements.lock changes.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ADDR ?= 127.0.0.1:3100
PYTEST_ARGS ?=

.PHONY: help install chromium run test test-pg lint format lock migrations-check clean

help:
	@echo "make install           create .venv and install requirements.lock (hash-checked)"
	@echo "make chromium          install Debian's chromium for the browser tests when missing (apt-get, root or sudo)"
	@echo "make run               migrate, bootstrap the demo company, start the task workers, serve on http://$(ADDR)/"
	@echo "make test              pytest on DATABASE_URL (SQLite when unset); PYTEST_ARGS=... passes through"
	@echo "make test-pg           prepare the local PostgreSQL (scripts/pg-prepare) and run the tests on it"
	@echo "make bench             benchmark: granian on throwaway PostgreSQL databases at 10k and 100k issues (bench/results/)"
	@echo "make fuzz              schemathesis over /api/openapi.json as an agent and as the board (the long run, 50 examples; scripts/fuzz)"
	@echo "make lint              ruff check + ruff format --check"
	@echo "make format            ruff format + ruff check --fix"
	@echo "make lock              regenerate requirements.lock from pyproject.toml (uv)"
	@echo "make migrations-check  fail when a model change has no migration"
	@echo "make clean             remove .venv and caches (keeps db.sqlite3, media/ and var/)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "No python3.11 or python3 on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.lock | $(BIN)/python
	$(BIN)/pip install --require-hashes -r requirements.lock
	touch $@

install: $(STAMP)

# The browser tests drive the system's Chromium (never a download). Installed with apt-get when
# missing and the user may; otherwise scripts/chromium-install says why and the tests skip.
chromium:
	@scripts/chromium-install

# Plain-HTTP local development: DEBUG on and cookies without the Secure flag, unless set already.
run: export DEBUG ?= 1
run: export SESSION_COOKIE_SECURE ?= 0
run: export CSRF_COOKIE_SECURE ?= 0
# The base of the URLs bootstrap_demo prints: where runserver listens.
run: export PAPERCLIP_API_URL ?= http://$(ADDR)
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_demo
	@# Two task workers run beside the server and stop with it: `default` delivers wakes and
	@# webhooks, `agents` runs process-adapter agents (a long run never holds up a delivery).
	@$(BIN)/python manage.py db_worker --no-reload --queue-name default & worker=$$!; \
	$(BIN)/python manage.py db_worker --no-reload --queue-name agents & agents=$$!; \
	trap 'kill $$worker $$agents 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(ADDR)

# Tests run with DEBUG off, where settings refuse a SECRET_KEY shorter than 50 characters.
test migrations-check: export SECRET_KEY ?= test-secret-key-not-for-production-0123456789abcdefghijkl
test migrations-check: export DEBUG ?= 0

# pytest exits 5 when it collected no tests: a run that tests nothing is a failure, say so.
test: $(STAMP) chromium
	@if [ -n "$${DATABASE_URL:-}" ]; then \
		echo "pytest on $${DATABASE_URL%%://*}://…@$${DATABASE_URL##*@} (DATABASE_URL)"; \
	else echo "pytest on SQLite (DATABASE_URL unset)"; fi
	@status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then \
		echo "make test: pytest ran no tests (exit 5: none collected, or all deselected); a run that tests nothing fails" >&2; \
	fi; \
	exit $$status

# `url=$(...) && export` so that a failing pg-prepare stops here (a bare `export "$(...)"` would not).
test-pg: $(STAMP)
	@url=$$(scripts/pg-prepare) && export "$$url" && \
	PAPERCLIP_REQUIRE_POSTGRES=1 $(MAKE) --no-print-directory test

# Throwaway databases at 10k and 100k issues (created, seeded, dropped by bench/run.py) on the
# PostgreSQL that pg-prepare readies; granian (or BENCH_SERVER=gunicorn) serves the app as in
# production; about 5 minutes. BENCH_* knobs (BENCH_SIZES=10000,100000,1000000 adds 1M issues):
# bench/run.py.
.PHONY: bench
bench: $(STAMP)
	@url=$$(scripts/pg-prepare) && export "$$url" && $(BIN)/python -m bench.run

# A throwaway SQLite database (or DATABASE_URL) and gunicorn on a free port; FUZZ_* knobs and
# what is checked: scripts/fuzz. Exits non-zero when schemathesis finds a failure.
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Needs only the virtualenv (the lock may be what is broken); uv is installed on demand.
lock: | $(BIN)/python
	@test -x $(BIN)/uv || $(BIN)/pip install uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		-o requirements.lock

migrations-check: $(STAMP)
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
