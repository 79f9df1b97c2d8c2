# Every target builds .venv first when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint format reproduce wheel lab clean-venv sync-notebooks

# Without an NVIDIA GPU: the CPU build of torch first, from its own index, else (the index
# cannot be reached within TORCH_CPU_TIMEOUT s) the default index's build. --isolated: no pip
# configuration (an extra index, local wheels) answers in the CPU index's place.
TORCH := torch==2.14.1
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_CPU_TIMEOUT ?= 20
EXTRAS ?= dev,study,tensorboard,cluster,cpu-fast

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then echo "setup: NVIDIA GPU found: torch from PyPI (CUDA build)"; \
	elif $(BIN)/python -m pip install --isolated --quiet --timeout $(TORCH_CPU_TIMEOUT) --retries 0 "$(TORCH)" --index-url $(TORCH_CPU_INDEX) 2>/dev/null; then \
	  echo "setup: no NVIDIA GPU: torch's CPU build from $(TORCH_CPU_INDEX)"; \
	else echo "setup: no NVIDIA GPU, but $(TORCH_CPU_INDEX) cannot be reached: torch from the default index (with CUDA libraries)"; fi
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m ipykernel install --sys-prefix --name derain --display-name "derain (.venv)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# after editing a chapter's .ipynb or its py:percent twin by hand (JupyterLab keeps both)
sync-notebooks: $(STAMP)
	cd notebooks && ../$(BIN)/jupytext --sync [0-9]*.ipynb

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The installable package (profiles inside it); tests/test_wheel.py installs and runs one.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel . --no-deps --no-build-isolation -q -w dist

# Offline without a mirror, `derain fetch` refuses; FETCH_FLAGS=--stand-ins goes on without it.
reproduce: $(STAMP)
	$(BIN)/derain fetch all $(FETCH_FLAGS)
	$(BIN)/derain reproduce --profile quick

# JupyterLab on the notebooks; as root (a container) it needs --allow-root, and says so.
lab: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then echo "lab: running as root: passing --allow-root to JupyterLab"; \
	  $(BIN)/jupyter lab --allow-root notebooks/; else $(BIN)/jupyter lab notebooks/; fi

clean-venv:
	rm -rf $(VENV)
