# Two entry points: `make captcha` (the main job) and `make test`. Both set up .venv once.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: captcha test lint bench clean-results

# --no-compile: Python compiles a module to bytecode when it is first imported, instead of pip
# compiling every file of the tree (TensorFlow's, Prefect's, ...) up front (BENCHMARKS.md, set-up).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --upgrade pip
	$(BIN)/pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
	touch $(STAMP)

captcha: $(STAMP)
	$(BIN)/ocr-pipeline captcha $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean-results:
	rm -rf ocr-results
