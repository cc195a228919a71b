# covault: make demo · make test · make bench · make lint
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/covault demo --out demo-out

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the benchmarks' baselines (openmined-psi, presidio) come with the bench extra
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[all,dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict privacy/

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache
