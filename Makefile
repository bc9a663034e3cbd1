# memgen: two commands on a fresh machine.
#   make book   build the book on the quick profile (CPU) into _build/html
#   make test   run the whole test suite (pytest + nbdev_test of the library notebooks)
# Both create .venv and install the pinned dependencies (requirements/lock.txt) first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Extra pip arguments for torch only, e.g. PyTorch's CPU-only wheel index on a machine without a GPU (see README).
TORCH_PIP_ARGS ?=

.PHONY: calibrated setup export book test clean medium

setup: $(VENV)/.memgen-installed

$(VENV)/.memgen-installed: requirements/lock.txt settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) "$$(grep '^torch==' requirements/lock.txt)"
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

export: setup
	$(BIN)/nbdev_export

book: export
	$(BIN)/memgen book --profile quick --device cpu

# No export here: the committed memgen/ must already be the export of nbs/ (tests/test_consistency.py checks it).
# One BLAS/OpenMP thread per process: the suite runs kernels and workers side by side on few cores (oversubscribed
# OpenBLAS threads spin), and single-threaded torch makes the quick book's numbers identical from run to run.
test: export OMP_NUM_THREADS ?= 1
test: export OPENBLAS_NUM_THREADS ?= 1
test: export MKL_NUM_THREADS ?= 1
# pytest runs on two workers (-n 2, whole files per worker: the quick book's tests share one build) while
# nbdev_test runs the library notebooks beside it; the make fails if either fails.
test: setup
	$(BIN)/ruff check memgen tests benchmarks
	$(BIN)/ruff format --check tests benchmarks setup.py
	@log=$$(mktemp); $(BIN)/nbdev_test --n_workers 1 >$$log 2>&1 & nb=$$!; \
	  trap 'kill $$nb 2>/dev/null; rm -f $$log' EXIT; \
	  $(BIN)/python -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile; rc=$$?; \
	  wait $$nb; nbrc=$$?; echo "nbdev_test (library notebooks):"; cat $$log; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	  if [ $$nbrc -ne 0 ]; then echo "nbdev_test failed (exit $$nbrc)"; exit $$nbrc; fi; exit $$rc

# The medium profile of the convolutional pair experiment (about an hour on 2 CPU cores; the book reads its stored
# results). The sweep store is committed every minute while it fills, so an interrupted run resumes from the
# repository (run `make medium` again: finished jobs are skipped); at the end the checked results are stored and committed.
MEDIUM_STORE := results/sweeps/denoisers-medium
# Ctrl-C (or SIGTERM) stops the sweep within seconds; what finished is committed on the way out, then make stops.
medium: setup
	$(BIN)/memgen sweep sweeps/denoisers-medium.yaml --workers 2 --commit-every 60
	$(BIN)/memgen sweep sweeps/denoisers-medium.yaml --store results/denoisers-medium
	git add $(MEDIUM_STORE) results/denoisers-medium
	git commit -q -m "results: denoisers-medium stored" -- $(MEDIUM_STORE) results/denoisers-medium

# The calibrated convolutional experiment the chapter 'Convolutional denoisers' reads (16x16, 8x8 and 32x32; about two
# and a half hours on 2 CPU cores). Finished jobs are skipped when it is run again; at the end each run is checked and stored.
calibrated: setup
	$(BIN)/memgen sweep sweeps/denoisers-calibrated.yaml --workers 2
	$(BIN)/memgen sweep sweeps/denoisers-calibrated.yaml --store results/denoisers-calibrated
	$(BIN)/memgen sweep sweeps/denoisers-calibrated-h8.yaml --workers 2
	$(BIN)/memgen sweep sweeps/denoisers-calibrated-h8.yaml --store results/denoisers-calibrated-h8
	$(BIN)/memgen sweep sweeps/denoisers-calibrated-h32.yaml --workers 2
	$(BIN)/memgen sweep sweeps/denoisers-calibrated-h32.yaml --store results/denoisers-calibrated-h32

clean:
	rm -rf _build
