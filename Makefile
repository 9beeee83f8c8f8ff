# Two commands do all the set-up:  `make book`  and  `make test`.
# Both install the pinned environment into .venv first (once; again when
# requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JB_ARGS := . --toc book/_toc.yml --config _config.yml -W --keep-going
# Test workers: one per core. `--dist loadfile` keeps each file (a chapter's
# cells share one kernel) on one worker; each chapter runs at one thread.
# `--no-loadscope-reorder`: files are handed out in the order conftest.py gives
# (the long items first), not by their number of tests, pytest-xdist's default,
# which left the single 37 s Colab test among the last files of a run.
WORKERS ?= auto
XDIST := -n $(WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: install book test unit notebooks student grade benchmark benchmark-nll clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Build the HTML book from the committed notebook outputs (never re-executes them),
## after exporting the decoder that the live latent-space explorer runs in the page.
book: install
	$(BIN)/python tools/export_explorer.py
	$(BIN)/jupyter-book build $(JB_ARGS)
	@echo "The book is at _build/html/index.html"

## Unit tests, every chapter re-executed and compared by nbval, the slow tests and the
## book build, across the cores; prints the 20 slowest tests and every chapter's time.
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest --nbval $(XDIST) --durations=20 $(PYTEST_ARGS)

## The inner loop: unit tests without the slow ones and the book build (README: budget).
unit: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -m "not slow and not book" $(XDIST) --durations=10 $(PYTEST_ARGS)

## Re-execute the chapters in place to refresh their committed outputs.
notebooks: install
	$(BIN)/python tools/execute_chapters.py chapters/*.ipynb

## Regenerate the student edition in exercises/ (committed; a test fails when it is stale):
## solutions replaced by stubs, outputs cleared. Run it after every change to a chapter.
student: install
	$(BIN)/python tools/student_edition.py chapters exercises

## Grade a folder of <student>__<NN_slug>.ipynb: each runs in a fresh kernel; grades.csv and
## grades.md go to $(GRADES). IT RUNS THE STUDENTS' CODE: only in a container or throwaway VM
## with no credentials and no network (tools/grade.py --help). GRADE_ARGS="--seed SECRET"
## draws each student's random cases from SECRET and the student's name.
SUBMISSIONS ?=
GRADES ?= grades
grade: install
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder [GRADES=grades] [GRADE_ARGS='--seed SECRET']"; exit 2; }
	$(BIN)/python tools/grade.py $(SUBMISSIONS) --out $(GRADES) $(GRADE_ARGS)

benchmark: install
	$(BIN)/python benchmarks/throughput.py

## Test NLL of the course's models (k = 5000, 10,000 images): tens of minutes per model.
benchmark-nll: install
	$(BIN)/python benchmarks/nll.py

clean:
	rm -rf _build student
