# The two commands of the README:
#   make demo   set everything up and run the whole chain on the bundled sample patients
#   make test   set everything up and run the whole test suite (what .ci/run runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python >= 3.10 needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sirt demo --output demo_output --overwrite

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_vsv.py
	$(VENV)/bin/python bench/bench_features.py
	$(VENV)/bin/python bench/bench_study.py

clean:
	rm -rf $(VENV) demo_output
