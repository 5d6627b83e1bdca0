# Two entry points: `make captcha` (the main job) and `make test`. Both set up .venv once.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled

.PHONY: captcha test lint bench clean-results

# --no-compile: pip would compile every file of the tree (TensorFlow's, Prefect's, ...) on one core
# before the main job starts, which imports a part of it (BENCHMARKS.md, set-up).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --upgrade pip
	$(BIN)/pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The test suite starts about a hundred Python processes, each importing TensorFlow or Prefect.
# Where PYTHONDONTWRITEBYTECODE is set (as in many container images) Python never writes what it
# compiles, so each of them compiled those libraries from source again (TensorFlow's import: 9.5 s
# instead of 3.7 s); compiled once here, on both cores, they are read from bytecode.
$(COMPILED): $(STAMP)
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') ocr_core tasks flows deployments tests > /dev/null \
	  || true  # a few libraries ship modules for newer Pythons only (whenever/_typing_312.py)
	touch $(COMPILED)

captcha: $(STAMP)
	$(BIN)/ocr-pipeline captcha $(ARGS)

test: $(COMPILED)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean-results:
	rm -rf ocr-results
