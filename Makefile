# Two commands for a fresh machine: `make demo` and `make test`. Both install first: the exact pins of
# requirements.txt (runtime and every extra) and requirements-dev.txt, see docs/install.md.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_INSTALL := $(PIP) install --disable-pip-version-check -q -c constraints.txt

.PHONY: install demo test lint format clean

install: $(STAMP)

# `pip check` last: the pins must satisfy the ranges pyproject.toml declares for `pip install amoseg`.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt -r requirements-dev.txt
	$(PIP_INSTALL) --no-deps -e .
	$(PIP) check --disable-pip-version-check
	touch $(STAMP)

demo: install
	$(VENV)/bin/amoseg demo --out demo_out

test: install
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -n 2 -q

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) demo_out
