# The two commands the README opens with: `make demo` and `make test`.
# Both create .venv with the machine's python3 and install what they need; nothing else is assumed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.core
	$(PIP) install -e ".[test]"
	touch $@

## demo: install the tool, identify the bundled real model files and inspect two of them
demo: $(VENV)/.core
	$(BIN)/tensorfile identify examples/models/*
	$(BIN)/tensorfile inspect examples/models/tiny-llama-q8_0.gguf --limit 8
	$(BIN)/tensorfile inspect examples/models/training-checkpoint.ckpt

## test: install the test dependencies, lint, and run the whole suite on 2 workers
test: $(VENV)/.test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.test
	$(BIN)/python bench/bench_identify.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
