# Every target sets itself up: a fresh clone needs only python3 (3.11+) and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-test-stamp

.PHONY: setup run placement real-data trainer-compare test test-fast lint format bench clean kernel-check

# Where a C compiler exists, the native kernel must build: its failure stops `make` (and its
# bit-identity tests fail rather than skip), so a broken build cannot pass as "numpy did it".
# Without a compiler the numpy implementation of the portable arithmetic does the work.
NNSWEEP_REQUIRE_NATIVE ?= $(shell (command -v cc || command -v gcc || command -v clang) >/dev/null 2>&1 && echo 1 || echo 0)
export NNSWEEP_REQUIRE_NATIVE

# compat mode puts the repo itself on sys.path, so Hydra finds conf/, experiments/ and the
# hydra_plugins/ namespace package exactly where they are in the checkout. The install also
# compiles the native kernel (nnsweep/train/_kernel.c) in place.
$(STAMP): pyproject.toml setup.py nnsweep/train/_kernel.c nnsweep/train/_kernel_path.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --config-settings editable_mode=compat
	@if [ "$(NNSWEEP_REQUIRE_NATIVE)" = 1 ]; then $(MAKE) --no-print-directory kernel-check; fi
	touch $(STAMP)

# Fails when the native kernel is not built (or is a stale build of another interface).
kernel-check:
	@$(BIN)/python -c "import sys; from nnsweep.train import native; sys.exit(0 if native.built() else $(KERNEL_MISSING))"
KERNEL_MISSING := 'a C compiler exists but the native kernel did not build (see the compiler output above; NNSWEEP_REQUIRE_NATIVE=0 goes on without it)'

# Tests also need pytest and ruff, the Ray and submitit launchers they run sweeps on, and
# scikit-learn (the real-data datasets and the MLP example trainer), so none of those tests skips.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,ray,slurm,real]' --config-settings editable_mode=compat
	touch $(TEST_STAMP)

setup: $(TEST_STAMP)

# The main job: the tutorial's question over 100 seeds per shape, tables and report included.
run: $(STAMP)
	$(BIN)/python -m nnsweep experiments=neurons_early hydra.sweep.dir=results/neurons_early

# The placement study (issue 14): every shape of two neuron budgets on three tasks, one
# sweep per task (each with its own report), then the combined report in results/placement/.
placement: $(STAMP)
	$(BIN)/python -m nnsweep experiments=placement hydra.sweep.dir=results/placement/example2
	$(BIN)/python -m nnsweep experiments=placement_parity hydra.sweep.dir=results/placement/parity4
	$(BIN)/python -m nnsweep experiments=placement_moons hydra.sweep.dir=results/placement/moons
	$(BIN)/python -m nnsweep.report.placement_report results/placement

# Real data (issue 20): the tutorial's shapes and the 24-neuron family on three of
# scikit-learn's bundled data sets, one sweep each, then the combined placement report.
real-data: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[real]' --config-settings editable_mode=compat
	$(BIN)/python -m nnsweep experiments=real_data_iris hydra.sweep.dir=results/real_data/iris
	$(BIN)/python -m nnsweep experiments=real_data_wine hydra.sweep.dir=results/real_data/wine
	$(BIN)/python -m nnsweep experiments=real_data_breast_cancer hydra.sweep.dir=results/real_data/breast_cancer
	$(BIN)/python -m nnsweep.report.placement_report results/real_data

# Bring your own trainer: the tutorial's full-batch trainer against examples/minibatch_momentum.py.
trainer-compare: $(STAMP)
	$(BIN)/python -m nnsweep experiments=trainer_compare hydra.sweep.dir=results/trainer_compare

# Every test, the slow end-to-end ones included (what CI runs), in TEST_WORKERS processes
# (pytest-xdist): most of the suite's time is processes starting, Hydra composing and
# reports rendering, one core each, so two workers keep a 2-core machine busy. loadgroup:
# the tests marked LOAD_SENSITIVE in tests/conftest.py share one worker (never side by side).
# pytest exits 5 when it collected nothing: that is a broken suite, so it fails too.
TEST_WORKERS ?= 2
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "slow or not slow" -n $(TEST_WORKERS) --dist loadgroup; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

# The quick loop while editing: everything not marked slow.
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Speed, measured by hand (never in tests): tutorial loop vs joblib vs nnsweep's sweep.
bench: $(STAMP)
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
