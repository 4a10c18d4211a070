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

.PHONY: setup system-packages demo test quick check release grade lab screenshots clean clean-class help

help:
	@echo "make demo     set up, release every assignment, grade the bundled examples (grades/, feedback/)"
	@echo "make test     set up and run the whole test suite"
	@echo "make quick    the tests that grade no notebook (about a minute): codec, checks, data, invariants"
	@echo "make release  regenerate release/ from source/"
	@echo "make check    check the course's invariants"
	@echo "make grade A=01_tensors   grade submitted/*/01_tensors"
	@echo "make lab      start JupyterLab at the course root (Formgrader, Validate); ARGS=... for jupyter"
	@echo "make screenshots  regenerate docs/screenshots/ in a real browser"
	@echo "make clean    remove what the course generates (keeps submitted/ and gradebook.db)"
	@echo "make clean-class  delete submitted/ and gradebook.db, after asking"

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

quick: setup
	$(RUN) -m pytest -n $(JOBS) --dist loadgroup -m "not slow"

release: setup
	$(RUN) -m course release

check: setup
	$(RUN) -m course check

grade:
	@test -n "$(A)" || { echo "usage: make grade A=<assignment>   (e.g. make grade A=01_tensors)"; exit 2; }
	@$(MAKE) --no-print-directory setup
	$(RUN) -m course grade $(A)

lab: setup
	$(RUN) -m course lab $(if $(ARGS),-- $(ARGS))

screenshots: setup
	$(RUN) scripts/screenshots.py

# What the course generates; the class (submitted/) and its gradebook (every hand grade) stay.
clean:
	rm -rf autograded/*/ autograded/.grading feedback grades demo .pytest_cache
	@if [ -e submitted ] || [ -e gradebook.db ]; then \
	  echo "kept submitted/ and gradebook.db (the class and its hand grades): 'make clean-class' removes them"; fi

# Removes the class: asks first, and refuses without a terminal to ask on.
clean-class:
	@if [ ! -t 0 ]; then echo "make clean-class asks before deleting submitted/ and gradebook.db: run it in a terminal"; exit 2; fi
	@printf 'Delete submitted/ (%s students) and gradebook.db with every grade? Type yes: ' \
	  "$$(ls submitted 2>/dev/null | wc -l)"; read answer; [ "$$answer" = yes ] || { echo "nothing deleted"; exit 1; }
	rm -rf submitted gradebook.db
