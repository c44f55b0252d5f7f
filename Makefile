# Two commands set everything up: `make demo` and `make test` each create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The shared offline datasets, when this checkout sits beside them (CI and the team machines).
SHARED_DATA := $(abspath ../shared/datasets)
ifneq ($(wildcard $(SHARED_DATA)),)
export NEURALSIGHT_DATA ?= $(SHARED_DATA)
endif

.PHONY: demo test bench lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, so pip never pulls a multi-GB CUDA build; then the package with its dev extra.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neuralsight demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --hardware cpu

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
