# Two commands set everything up: `make demo` and `make test` each create .venv when it is missing.
# A second call is quick: the install step is a stamp file that only a changed pyproject.toml redoes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The shared offline datasets, when this checkout sits beside them (CI and the team machines).
SHARED_DATA := $(abspath ../shared/datasets)
ifneq ($(wildcard $(SHARED_DATA)),)
export NEURALSIGHT_DATA ?= $(SHARED_DATA)
endif
export MPLBACKEND ?= Agg

.PHONY: demo test bench lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, so the package's `torch>=2.2` is already met and pip never swaps in another build
# (on a GPU machine, install the CUDA build of torch==2.13.0 into .venv first; this step keeps it).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neuralsight demo

# pytest exits 5 when it collects no tests (an empty selection); that is not a failure of the code.
test: $(STAMP)
	$(PY) -m pytest -q || [ $$? -eq 5 ]

# Every benchmark script (benchmarks/common.py is their shared helper, not a benchmark).
bench: $(STAMP)
	$(PY) -m pip install -q torch==2.13.0 -e '.[bench]'
	@set -e; for f in benchmarks/*.py; do \
	  case "$$f" in */common.py|*/__init__.py) continue;; esac; \
	  echo "== $$f"; $(PY) "$$f" --hardware auto; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
