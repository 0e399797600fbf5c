# torchlesson set-up commands. Everything is installed into a virtual environment in .venv.
#
#   make lesson   install torch and torchlesson with JupyterLab, then open the lesson notebook
#   make test     install torch and torchlesson with its test tools, then run the tests
#   make lint     ruff check and ruff format --check
#
# Running them again is quick: torch is only installed when pip finds it missing, and torchlesson
# (an editable install) only again when pyproject.toml has changed.
#
# Variables, e.g. `make lesson TORCH=...`:
#   TORCH        what pip installs torch from; default torch==2.13.0. Any pip arguments work, e.g.
#                TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" for the CPU build
#   PYTHON       the interpreter that creates .venv (Python 3.10 or newer); default python3
#   PYTEST_ARGS  extra pytest arguments, e.g. PYTEST_ARGS='-m "not browser"' or PYTEST_ARGS=tests/test_quiz.py
#   LAB_ARGS     extra `jupyter lab` arguments, e.g. LAB_ARGS=--no-browser

PYTHON ?= python3
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
LAB_ARGS ?=
LESSON := examples/03_tensors_and_autograd.ipynb
VENV := .venv
PIP := $(VENV)/bin/python -m pip

.PHONY: lesson test lint torch deps-lab deps-test

lesson: deps-lab
	$(VENV)/bin/jupyter lab $(LAB_ARGS) $(LESSON)

test: deps-test
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: deps-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

deps-lab: $(VENV)/.installed-lab
deps-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch first, so that torchlesson's `torch` requirement is met by the build chosen with TORCH
torch: | $(VENV)/bin/python
	$(PIP) install $(TORCH)

$(VENV)/.installed-%: pyproject.toml | torch
	$(PIP) install -e ".[$*]"
	@touch $@
