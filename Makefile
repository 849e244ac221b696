# kexec-py: `make demo` and `make test` set up everything they need on a fresh Debian 12 or
# RHEL 9 machine (system packages, the VM kernel, a venv with `pip install -e .`).

PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: all deps venv kernel build demo test test-unit test-vm rpm sdist bench clean

all: build

deps:
	sh tools/install-deps.sh

# The venv is rebuilt when the project's build inputs change.
$(VENV)/.installed: pyproject.toml setup.py csrc/build_ffi.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel cffi
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

venv: deps $(VENV)/.installed

# Rebuild the C parts in place after editing csrc/.
build: venv
	$(VPY) -m pip install -q --no-deps --no-build-isolation -e .

kernel: venv
	$(VPY) -m tests.vm.kernel

demo: venv kernel build
	$(VPY) -m tests.vm.demo

# Every test, and the benchmarks in their quick mode (64 MiB, no speed assertions).
test: venv kernel build
	$(VPY) -m pytest -ra $(PYTEST_ARGS) tests benchmarks

test-unit: venv build
	$(VPY) -m pytest -ra $(PYTEST_ARGS) tests/unit

test-vm: venv kernel build
	$(VPY) -m pytest -ra $(PYTEST_ARGS) tests/vm

sdist: venv
	rm -rf dist
	$(VPY) -m build --sdist --outdir dist .

# Binary RPM from kexec-tools.spec, built with rpmbuild under build/rpm.
rpm: sdist
	sh tools/build-rpm.sh dist build/rpm

bench: venv build
	$(VPY) -m pytest -q benchmarks

clean:
	rm -rf build dist *.egg-info kexec_py/_native*.so kexec_py/_native.c kexec_py/libexec kexec_py/data/purgatory.bin
	find . -name __pycache__ -prune -exec rm -rf {} +
