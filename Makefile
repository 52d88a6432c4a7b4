# The two commands of the README:
#   make demo   set everything up and run the whole chain on the bundled sample patients
#   make test   set everything up and run the whole test suite on Python 3.11 and 3.12 (what .ci/run runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# The suite also runs on Python 3.12, the Python of Slicer 5.10-5.12: python3.12 on the PATH, else a
# pyenv 3.12; none found: the 3.12 run is skipped with a message.
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null); do \
	"$$p" -c '' 2>/dev/null && { command -v "$$p"; break; }; done)
VENV312 := .venv312
STAMP312 := $(VENV312)/.installed

.PHONY: demo test test311 test312 bench clean

# Upstream pyradiomics (what SlicerRadiomics builds for Slicer), built from its PyPI source package
# without build isolation into <venv>/pyradiomics-upstream, for the test that both pyradiomics builds
# give the same features (SIRTDosiomics/Testing/Python/test_dosiomics_engines.py). 3.0.1: the 3.1.0
# source package lacks a C header. A failed build only skips that test.
UPSTREAM_PYRADIOMICS := pyradiomics==3.0.1
define install_venv
	$(2)/bin/python -m pip install --quiet --upgrade pip
	$(2)/bin/python -m pip install --quiet -e ".[test,mc]"
	$(2)/bin/python -m pip install --quiet --target $(2)/build-tools "setuptools<81" wheel "versioneer[toml]" \
	  && PYTHONPATH=$(CURDIR)/$(2)/build-tools $(2)/bin/python -m pip install --quiet --no-build-isolation --no-deps \
	     --target $(2)/pyradiomics-upstream "$(UPSTREAM_PYRADIOMICS)" \
	  || echo "upstream pyradiomics did not build: the test comparing the two pyradiomics builds is skipped"
	touch $(1)
endef

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python >= 3.10 needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(call install_venv,$(STAMP),$(VENV))

$(STAMP312): pyproject.toml Makefile
	$(PYTHON312) -m venv $(VENV312)
	$(call install_venv,$(STAMP312),$(VENV312))

demo: $(STAMP)
	$(VENV)/bin/sirt demo --output demo_output --overwrite

test: test311 test312

test311: $(STAMP)
	$(VENV)/bin/python -m pytest

ifeq ($(strip $(PYTHON312)),)
test312:
	@echo "make test: no Python 3.12 found (python3.12 or pyenv); the suite ran on Python 3.11 only"
else
test312: $(STAMP312)
	$(VENV312)/bin/python -m pytest
endif

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_vsv.py
	$(VENV)/bin/python bench/bench_features.py
	$(VENV)/bin/python bench/bench_study.py
	$(VENV)/bin/python bench/bench_fast_paths.py
	$(VENV)/bin/python bench/bench_fast_mlp.py
	$(VENV)/bin/python bench/bench_mc.py
	$(VENV)/bin/python bench/bench_memory.py
	$(VENV)/bin/python bench/bench_registration.py

clean:
	rm -rf $(VENV) $(VENV312) demo_output
