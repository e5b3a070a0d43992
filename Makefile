# The two commands the README opens with: `make demo` and `make test`.
# Both create .venv with the machine's python3 and install what they need; nothing else is assumed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test strace chromium lint bench bench-scan bench-convert bench-estimate bench-remote clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml setup.py $(wildcard src/tensorfile/convert/quants/_kernel*.[ch]) | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.core
	$(PIP) install -e ".[test]"
	touch $@

## demo: install the tool, identify the bundled real model files, inspect two of them, scan them all,
## convert the pickled one to safetensors (into a temporary folder) and prove it lossless with diff
demo: $(VENV)/.core
	$(BIN)/tensorfile identify examples/models/*
	$(BIN)/tensorfile inspect examples/models/tiny-llama-q8_0.gguf --limit 8
	$(BIN)/tensorfile inspect examples/models/training-checkpoint.ckpt
	$(BIN)/tensorfile scan -v examples/models
	$(BIN)/tensorfile estimate 7B --task train --method qlora --grad-ckpt --gpu 4090 --max-batch
	out=$$(mktemp -d) && \
	$(BIN)/tensorfile convert examples/models/pytorch_model.bin $$out/model.safetensors && \
	$(BIN)/tensorfile diff examples/models/pytorch_model.bin $$out/model.safetensors && \
	rm -rf $$out

## test: install the test dependencies, lint, and run the whole suite on 2 workers
test: $(VENV)/.test strace chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest -n 2 -q

## strace: tests/test_scan_strace.py traces `tensorfile scan` with it (no process, socket or write).
## The machine image ships it; when missing it is installed with apt-get as root, else that test skips.
strace:
	@command -v strace >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -qq strace >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq strace >/dev/null 2>&1; }; }; } || \
		echo "strace is not installed: tests/test_scan_strace.py will skip"

## chromium: tests/test_view_browser.py drives Debian's chromium with Playwright, launched by its path
## (never a browser download). When missing it is installed with apt-get as root, else those tests skip.
chromium:
	@[ -x /usr/bin/chromium ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
		echo "chromium is not installed: tests/test_view_browser.py will skip"

bench: $(VENV)/.test
	$(BIN)/python bench/bench_identify.py

## bench-scan: scan detection on ../shared/corpus/security and speed, beside picklescan and modelaudit
.bench-venv/bin/python: bench/requirements-peers.txt
	$(PYTHON) -m venv .bench-venv
	.bench-venv/bin/python -m pip --disable-pip-version-check -q install -r bench/requirements-peers.txt

bench-scan: $(VENV)/.test .bench-venv/bin/python
	$(BIN)/python bench/bench_scan.py

## bench-convert: pickle -> safetensors, bf16 cast, shard and merge of a ~2 GB checkpoint beside cp and torch
bench-convert: $(VENV)/.test
	$(BIN)/python bench/bench_convert.py

## bench-estimate: docs/ESTIMATES.md — our error on the measured rows beside the seed rules and the peer
## tools (bench/peer_estimates.py runs accelerate, hf-mem and DeepSpeed offline in their own venv)
bench-estimate: $(VENV)/.test
	$(PYTHON) bench/peer_estimates.py
	$(BIN)/python bench/estimate_table.py

## bench-remote: remote inspect of sharded 16 GB and 141 GB repos (sparse, on tests/hubserver.py) beside
## huggingface_hub's get_safetensors_metadata and hf-mem (in .bench-estimate-venv, built when missing)
bench-remote: $(VENV)/.test
	PYTHON=$(PYTHON) $(BIN)/python bench/bench_remote.py

clean:
	rm -rf $(VENV) .bench-venv .bench-estimate-venv .pytest_cache .ruff_cache
