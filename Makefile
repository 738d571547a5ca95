# The two commands: `make run` (install and start everything, embedded) and `make test`.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/installed  ## Create .venv and install the pinned requirements

run: install  ## Install and start web, inference and scheduled retraining on SQLite (http://127.0.0.1:8000)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile.embedded

browser:  ## Install Debian's Chromium (and CJK fonts) for the browser tests (needs root or sudo)
	@{ test -x /usr/bin/chromium && test -d /usr/share/fonts/opentype/noto; } || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

test: install browser  ## Run the tests against PostgreSQL and Redis on 127.0.0.1
	$(VENV)/bin/pytest --ignore=tests/test_fuzz.py
	$(VENV)/bin/pytest tests/test_fuzz.py  # in a process of its own: it fails after the other modules (open)

check: install  ## Lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

audit: install  ## Known vulnerabilities in the pinned requirements (pip-audit)
	$(VENV)/bin/pip-audit -r requirements.txt -r requirements-dev.txt --no-deps --disable-pip --progress-spinner off

bench: install  ## Run the benchmarks (minutes; see BENCHMARKS.md)
	bash bench/run_all.sh

.PHONY: help install run browser test check audit bench
