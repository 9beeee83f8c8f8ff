# Two commands do all the set-up:  `make book`  and  `make test`.
# Both install the pinned environment into .venv first (once; again when
# requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JB_ARGS := . --toc book/_toc.yml --config _config.yml -W --keep-going

.PHONY: install book test unit notebooks student benchmark benchmark-nll clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Build the HTML book from the committed notebook outputs (never re-executes them).
book: install
	$(BIN)/jupyter-book build $(JB_ARGS)
	@echo "The book is at _build/html/index.html"

## Unit tests, every chapter re-executed and compared by nbval, and the book build.
test: install
	$(BIN)/python -m pytest --nbval $(PYTEST_ARGS)

## Unit tests only (fast).
unit: install
	$(BIN)/python -m pytest tests -m "not book"

## Re-execute the chapters in place to refresh their committed outputs.
notebooks: install
	$(BIN)/python tools/execute_chapters.py chapters/*.ipynb

## Write the student edition: solutions replaced by stubs, outputs cleared.
student: install
	$(BIN)/python tools/student_edition.py chapters student/chapters

benchmark: install
	$(BIN)/python benchmarks/throughput.py

## Test NLL of the course's models (k = 5000, 10,000 images): tens of minutes per model.
benchmark-nll: install
	$(BIN)/python benchmarks/nll.py

clean:
	rm -rf _build student
