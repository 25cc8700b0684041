# One-command set-up: each target creates (or reuses) .venv, installs torch, the package's extras
# and the `adain-cuda` command, builds the extension in place (ninja, incremental), then runs.
#   make demo    the fused op against the reference, then a contact sheet and an index page in
#                demo_output/ (stylizations with the pretrained weights; offline, colour transfer)
#   make test    the test suite (CUDA cases skip without a GPU)
#   make lint    ruff (lint and format), mypy, the import-layer contract and the C++ formatting check
#   make bench   the benchmarks (pytest-benchmark), JSON in .benchmarks/
#   make sass-check  the sm_90 machine code of the hot kernels (CUDA builds)
# Torch: the CUDA build where an NVIDIA GPU is visible or FORCE_CUDA=1 asks for one, else the
# small CPU build; TORCH=... overrides both. Build switches (README): FORCE_CUDA=0/1,
# TORCH_CUDA_ARCH_LIST="9.0", MAX_JOBS=N.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_CUDA ?= torch==2.14.1
TORCH_CPU ?= torch==2.13.0+cpu
# Where pip finds CPU builds of torch (PyPI's Linux wheels are CUDA builds).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

HAVE_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
ifeq ($(origin TORCH),undefined)
ifneq ($(filter 1,$(FORCE_CUDA) $(HAVE_GPU)),)
TORCH := $(TORCH_CUDA)
else
TORCH := $(TORCH_CPU)
TORCH_PIP_ARGS := --extra-index-url $(TORCH_CPU_INDEX)
endif
endif

# torch guesses CUDA's home from the nvcc on PATH, which may be a wrapper: point it at the toolkit.
CUDA_HOME ?= $(wildcard /usr/local/cuda)
ifneq ($(CUDA_HOME),)
export CUDA_HOME
endif

.PHONY: demo test bench bench-smoke build info lint sass-check clean

# setuptools, wheel and ninja first: the builds run without build isolation. The package goes in
# editable (the `adain-cuda` command, the extras) without its extension, which `build` compiles
# in place, incrementally.
$(VENV)/.deps: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=64" wheel ninja
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH)"
	ADAIN_CUDA_NO_EXTENSION=1 $(PY) -m pip install -q --no-build-isolation \
		--config-settings editable_mode=compat -e ".[dev]"
	touch $@

build: $(VENV)/.deps
	$(PY) setup.py -q build_ext --inplace

info: build
	$(PY) -m adain_cuda info

# DEMO_ARGS="--vgg vgg_normalised.pth --decoder decoder.pth" points the demo at local weight files.
demo: build
	$(PY) -m adain_cuda demo $(DEMO_ARGS)

test: info
	$(PY) -m pytest -q tests

# The hot kernels' sm_90 machine code (a CUDA build: FORCE_CUDA=1): no register spills, register
# budgets, 128-bit loads and stores (scripts/check_sass.py; no GPU needed).
sass-check: build
	$(PY) scripts/check_sass.py

lint: $(VENV)/.deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/clang-format --dry-run --Werror csrc/*.h csrc/*.cpp csrc/cpu/* csrc/cuda/*

# Every benchmark once, untimed, as a test that it runs (the torch.compile baselines left out:
# compiling them is most of the time and tests torch, not this package).
bench-smoke: build
	ADAIN_CUDA_BENCH_SMOKE=1 $(PY) -m pytest -q benchmarks --benchmark-disable -k "not compiled"

bench: build
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-autosave \
		--benchmark-columns=median,iqr,rounds --benchmark-sort=name

clean:
	rm -rf build adain_cuda/_C*.so .pytest_cache .benchmarks
