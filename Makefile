# One-command set-up: each target creates (or reuses) .venv, installs torch and the test tools,
# builds the extension in place (ninja, incremental), then runs.
#   make demo    fused AdaIN vs the reference, then sample stylizations (needs the pretrained
#                weights, downloaded on first use; says how to get them when it cannot)
#   make test    the test suite (CUDA cases skip without a GPU)
#   make bench   the benchmarks (pytest-benchmark), JSON in .benchmarks/
# Build switches (see README): FORCE_CUDA=0/1, TORCH_CUDA_ARCH_LIST="9.0", MAX_JOBS=N.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1
PY := $(VENV)/bin/python

# torch guesses CUDA's home from the nvcc on PATH, which may be a wrapper: point it at the toolkit.
CUDA_HOME ?= $(wildcard /usr/local/cuda)
ifneq ($(CUDA_HOME),)
export CUDA_HOME
endif

.PHONY: demo test bench build info clean

$(VENV)/.deps: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=64" wheel
	$(PY) -m pip install -q "$(TORCH)" ninja numpy pillow tqdm av pytest pytest-benchmark
	touch $@

$(VENV)/.demo-deps: $(VENV)/.deps
	$(PY) -m pip install -q matplotlib
	touch $@

build: $(VENV)/.deps
	$(PY) setup.py -q build_ext --inplace

info: build
	$(PY) -m adain_cuda.info

demo: build $(VENV)/.demo-deps
	$(PY) -m adain_cuda.demo

test: info
	$(PY) -m pytest -q tests

bench: build
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-autosave \
		--benchmark-columns=median,iqr,rounds --benchmark-sort=name

clean:
	rm -rf build adain_cuda/_C*.so .pytest_cache .benchmarks
