# Two commands do all the set-up on a fresh machine with Python 3.11, make and bash:
#   make run   - create .venv, install, migrate the embedded SQLite DB, load demo data, serve
#   make test  - create .venv, install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean schema browser screenshots

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

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests drive Debian's chromium (Playwright's own download does not work here).
# Installed when missing and we may (root, apt-get); otherwise those tests are skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	  || { echo "installing chromium for the browser tests"; \
	       apt-get install -y -qq chromium >/dev/null 2>&1 \
	       || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; } \
	       || echo "chromium could not be installed: the browser tests will be skipped"; }

# The README's screenshots of the client, phone-sized, taken by the browser tests.
screenshots: $(STAMP) browser
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/web/test_client.py -q

lint: $(STAMP)
	$(BIN)/ruff check .

# The committed contract for the mobile teams; tests/api/test_schema_contract.py keeps it in step.
schema: $(STAMP)
	$(BIN)/strawberry export-schema app.schema_export:schema --output schema.graphql

clean:
	rm -rf $(VENV) var .pytest_cache
