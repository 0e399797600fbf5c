# torchlesson set-up commands. Everything is installed into a virtual environment in .venv.
#
#   make lesson   install torch and torchlesson with JupyterLab, then open the lesson notebook
#   make test     install torch and torchlesson with its test tools, then run the tests
#   make lint     ruff check and ruff format --check
#   make test-ipython7  the magics' tests again, in .venv-ipython7 with IPython 7.34 (Colab's; the
#                 oldest pyproject.toml allows)
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

.PHONY: lesson test lint torch deps-lab deps-test test-ipython7

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

# the tests that run magics in a real IPython shell, on the oldest IPython we support
OLD_VENV := .venv-ipython7
OLD_TESTS := tests/test_capture.py tests/test_extension.py tests/test_quiz_magic.py tests/test_leaf_gradients.py \
	tests/test_faithful.py tests/test_names.py tests/test_predict.py

$(OLD_VENV)/.installed: pyproject.toml
	test -x $(OLD_VENV)/bin/python || $(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VENV)/bin/python -m pip install $(TORCH)
	$(OLD_VENV)/bin/python -m pip install -e . "ipython==7.34.0" "pytest>=8.0" "pytest-timeout>=2.2" \
		"nbformat>=5.9" "psutil>=5.9"
	@touch $@

test-ipython7: $(OLD_VENV)/.installed
	$(OLD_VENV)/bin/python -m pytest -p no:cacheprovider $(OLD_TESTS)
