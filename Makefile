# The course's commands. `make demo` and `make test` work on a fresh clone: they
# create .venv (once; again only when pyproject.toml changes) and install the course.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader shells out to alembic: the venv's bin/ must be on PATH.
RUN    := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python
# Test workers: 2 by default (this course's CI has 2 cores).
JOBS   ?= 2

.PHONY: setup system-packages demo test check release grade lab screenshots clean help

help:
	@echo "make demo     set up, release every assignment, grade the bundled examples (grades/, feedback/)"
	@echo "make test     set up and run the whole test suite"
	@echo "make release  regenerate release/ from source/"
	@echo "make check    check the course's invariants"
	@echo "make grade A=01_tensors   grade submitted/*/01_tensors"
	@echo "make lab      start JupyterLab at the course root (Formgrader, Validate); ARGS=... for jupyter"
	@echo "make screenshots  regenerate docs/screenshots/ in a real browser"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed: install python3.11 and run make again"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

setup: $(STAMP) system-packages

# bubblewrap (grading sandbox), chromium (browser tests) and postgresql (shared-gradebook tests):
# installed when root with apt,
# otherwise the script says how and the tests that need them skip.
system-packages:
	@bash scripts/system-packages.sh

demo: setup
	$(RUN) -m course demo

test: setup
	$(RUN) -m pytest -n $(JOBS) --dist loadgroup

release: setup
	$(RUN) -m course release

check: setup
	$(RUN) -m course check

grade: setup
	@test -n "$(A)" || { echo "usage: make grade A=<assignment>"; exit 2; }
	$(RUN) -m course grade $(A)

lab: setup
	$(RUN) -m course lab $(if $(ARGS),-- $(ARGS))

screenshots: setup
	$(RUN) scripts/screenshots.py

clean:
	rm -rf submitted autograded/*/ feedback grades gradebook.db .pytest_cache
