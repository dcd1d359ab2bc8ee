# Two entry points for a new user: `make demo` (the main job) and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= shopsim

.PHONY: demo test test-ray lint bench bench-quick bench-quick-ray clean

$(BIN)/recdrill: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/recdrill
	$(BIN)/recdrill demo --data $(DATA) --out runs/demo

lint: $(BIN)/recdrill
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/mirror.py --min-share 0.85
	$(BIN)/python tools/sizes.py --max-module 450 --max-function 80

test: lint
	$(BIN)/pytest -q -m "not ray"

# Opt-in (CI runs it): the Ray Serve smoke test, after installing the 'ray' extra.
test-ray: $(BIN)/recdrill
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	$(BIN)/pytest -q -m ray

bench: $(BIN)/recdrill
	$(BIN)/python benchmarks/bench_shopsim.py
	$(BIN)/python benchmarks/bench_baselines.py

# Every benchmark's --quick mode (seconds each, tiny data), one after the other; the first failure
# stops it, named on the last line (CI runs both, .ci/run). ray_serve skips here without Ray;
# bench-quick-ray installs the 'ray' extra and requires it.
bench-quick: $(BIN)/recdrill
	$(BIN)/python benchmarks/run_quick.py

bench-quick-ray: $(BIN)/recdrill
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	$(BIN)/python benchmarks/run_quick.py --ray

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
