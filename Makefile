# Paywatch: `make run` sets everything up and starts every process; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-sqlite test-postgres lint setup-run setup-test migrate messages bench clean

# make run is development: DEBUG on (production refuses development keys with DEBUG off).
run: export DEBUG ?= 1
run: setup-run migrate
	@test -s var/admin-password || $(PY) -c "import secrets; print(secrets.token_urlsafe(12))" > var/admin-password
	DEMO_ADMIN_PASSWORD="$$(cat var/admin-password)" $(PY) manage.py seed_demo
	scripts/run

# The whole suite on SQLite and, at the same time, everything that touches the
# database or starts processes again on a throw-away PostgreSQL cluster
# (Debian's package, a free port, a temporary directory; never the system
# service): scripts/test. test-sqlite and test-postgres run one of them.
test: setup-test lint
	PY=$(PY) scripts/test

test-sqlite: setup-test
	$(PY) -m pytest

test-postgres: setup-test
	$(PY) -m paywatch_dev.postgres -- $(PY) -m pytest -m "not browser" --ignore=tests/simulator --ignore=tests/deploy -p no:cacheprovider

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

# honcho (scripts/run) is a development requirement: production runs supervisor.
setup-run: $(VENV)/.dev-installed
	@scripts/ensure-system-packages redis-server:redis-server msgfmt:gettext
	$(MAKE) --no-print-directory messages

setup-test: $(VENV)/.dev-installed node_modules/.installed
	@scripts/ensure-system-packages redis-server:redis-server chromium:chromium pg_ctlcluster:postgresql nginx:nginx supervisord:supervisor msgfmt:gettext
	$(MAKE) --no-print-directory messages

# The Indonesian catalogue (locale/*/LC_MESSAGES/django.po) compiled to the .mo Django reads; .mo files are not committed.
messages: $(VENV)/.installed
	$(PY) manage.py compilemessages -v0 --ignore=.venv --ignore=node_modules

# axe-core for the browser tests' accessibility checks, exactly as package-lock.json pins it.
node_modules/.installed: package.json package-lock.json
	@scripts/ensure-system-packages npm:npm
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

migrate: $(VENV)/.installed
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(VENV)/.installed $@

bench: $(VENV)/.dev-installed
	@scripts/ensure-system-packages redis-server:redis-server
	$(PY) bench/push_latency.py --watchers 1000
	$(PY) bench/reconcile.py --baseline-count 300

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache node_modules
	find locale -name '*.mo' -delete
