# One place for the project's commands; the README's first two lines are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck check lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/northstar demo

test: setup
	sh infra/ci/ensure-postgres.sh
	sh infra/ci/ensure-chromium.sh
	$(BIN)/pytest -q -n 2

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check flows tasks schemas northstar benchmarks
	$(BIN)/bandit -q -r northstar tasks flows schemas -s B101

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache northstar.db demo-data
