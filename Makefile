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
# The catalog datasets the test suite reads (tests/test_setup.py keeps this list in step with the tests).
# `make test` fetches those that are missing; `make demo` fetches what the demo trains on.
TEST_DATASETS := fashion-mnist romeo-juliet oxford-pets msd-hippocampus covid-hu dental-teeth-2d dental-xray \
                 kits19-kidney-2d-mini

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

# Missing data is fetched first (Debian's package as root, else the exact sudo line, else the checksummed
# download); a dataset that cannot be had stops here with the reason, before any training.
demo: $(STAMP)
	$(VENV)/bin/neuralsight data fetch --demo
	$(VENV)/bin/neuralsight demo

# A dataset that cannot be had does not stop the suite: the tests that need it skip and say why.
# pytest exits 5 when it collects no tests (an empty selection); that is not a failure of the code.
test: $(STAMP)
	$(VENV)/bin/neuralsight data fetch --no-progress $(TEST_DATASETS) \
	  || echo "make test: some datasets could not be fetched (reasons above); the tests that need them will skip"
	$(PY) -m pytest -q || [ $$? -eq 5 ]

# Every benchmark script, in this order; `make bench BENCH_ARGS="--seeds 1"` passes arguments to each. Results go
# to runs/benchmarks/ (git-ignored); add --write to BENCH_ARGS to record them in benchmarks/results/.
BENCHMARKS := fashion_mnist textgen segmentation segment3d forecast engine_overhead
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m pip install -q torch==2.13.0 -e '.[bench]'
	@set -e; for b in $(BENCHMARKS); do \
	  echo "== benchmarks/$$b.py"; $(PY) "benchmarks/$$b.py" --hardware auto $(BENCH_ARGS); \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
