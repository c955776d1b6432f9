# Two commands do all the set-up on a fresh machine with Python 3.11, make and bash:
#   make run   - create .venv, install, migrate the embedded SQLite DB, load demo data, serve
#   make test  - create .venv, install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/socialwallet migrate
	$(BIN)/socialwallet seed-demo --if-empty
	$(BIN)/socialwallet serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

schema: $(STAMP)
	$(BIN)/strawberry export-schema graphql_schema.export:schema > schema.graphql

clean:
	rm -rf $(VENV) var .pytest_cache
