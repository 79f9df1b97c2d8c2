# Every target builds .venv first when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint format reproduce wheel clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,cpu-fast]"
	$(BIN)/python -m ipykernel install --sys-prefix --name derain --display-name "derain (.venv)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The installable package (profiles inside it); tests/test_wheel.py installs and runs one.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel . --no-deps --no-build-isolation -q -w dist

reproduce: $(STAMP)
	$(BIN)/derain fetch all
	$(BIN)/derain reproduce --profile quick

clean-venv:
	rm -rf $(VENV)
