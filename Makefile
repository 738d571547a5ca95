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
	$(VENV)/bin/pytest

check: install  ## Lint and type-check (ruff; mypy with django-stubs on chatbot/ and training/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy chatbot training

# pip-audit counts a package it cannot look up as "skipped" and still passes; say how many were not checked.
define AUDIT_REPORT
import json, os, sys
deps = json.load(open(sys.argv[1]))["dependencies"]
vulnerable = [d for d in deps if d.get("vulns")]
skipped = [d for d in deps if "skip_reason" in d]
for d in vulnerable:
    for v in d["vulns"]:
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or 'no release'})")
print(f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} pinned packages audited, {len(vulnerable)} vulnerable")
if skipped:
    print(f"WARNING: {len(skipped)} of {len(deps)} packages were NOT audited (their versions could not be looked up "
          f"on the vulnerability service; e.g. {skipped[0]['skip_reason']}). A pass here does not mean "
          "they are free of known vulnerabilities; AUDIT_STRICT=1 makes this an error.", file=sys.stderr)
sys.exit(1 if vulnerable or (skipped and os.environ.get("AUDIT_STRICT") == "1") else 0)
endef
export AUDIT_REPORT

audit: install  ## Known vulnerabilities in the pinned requirements (pip-audit); warns about packages it could not check
	@rm -f $(VENV)/audit.json
	@$(VENV)/bin/pip-audit -r requirements.txt -r requirements-dev.txt --no-deps --disable-pip --progress-spinner off \
	  --format json --output $(VENV)/audit.json || test -s $(VENV)/audit.json
	@$(PY) -c "$$AUDIT_REPORT" $(VENV)/audit.json

bench: install  ## Run the benchmarks (minutes; see BENCHMARKS.md)
	bash bench/run_all.sh

.PHONY: help install run browser test check audit bench
