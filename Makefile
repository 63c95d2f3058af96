# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-full lint unit golden integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: this CPU wheel lies on disk; an unpinned torch pulls a CUDA build of several GB.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,examples]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check gpuserve tests examples scripts bench
	$(BIN)/ruff format --check gpuserve tests examples scripts bench
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not full"

# Every example on every target: what `make test` leaves out to stay near 20 minutes.
test-full: $(STAMP) lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

golden: $(STAMP)
	$(BIN)/python -m pytest tests/golden

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

# The benchmarks of docs/benchmarks.md: wrk from Debian where apt-get can install it (else the scripts' own Python
# load generator), valgrind from Debian (bench/instructions.py counts with it), LitServe from the `bench` extra,
# every bench/*.py script in turn.
bench: $(STAMP)
	command -v wrk >/dev/null || { command -v apt-get >/dev/null && (apt-get install -y -q wrk || \
		{ apt-get update -q && apt-get install -y -q wrk; }) || echo "no wrk: the Python load generator is used"; }
	command -v valgrind >/dev/null || { command -v apt-get >/dev/null && (apt-get install -y -q valgrind || \
		{ apt-get update -q && apt-get install -y -q valgrind; }) || echo "no valgrind: bench/instructions.py fails"; }
	$(BIN)/pip install -q -e '.[bench]'
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .cache build dist
