# Two commands do all the set-up on a fresh machine with Python 3.11, make and bash:
#   make run   - create .venv, install, migrate the embedded SQLite DB, load demo data, serve
#   make test  - create .venv, install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck clean schema tools browser screenshots api-tools codegen topology

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
	$(BIN)/socialwallet serve --with-jobs

test: $(STAMP) tools api-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's tools the tests drive: chromium for the browser tests (Playwright's own download does
# not work here), pgbouncer for the pooler tests, nginx for the topology test. Installed when
# missing and we may (root, apt-get); without them those tests fail on PostgreSQL (pgbouncer,
# nginx) or skip outside CI (chromium).
TOOLS := chromium pgbouncer nginx
tools:
	@missing=""; for tool in $(TOOLS); do \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	  || { echo "installing$$missing for the tests"; \
	       apt-get install -y -qq $$missing >/dev/null 2>&1 \
	       || { apt-get update -qq >/dev/null && apt-get install -y -qq $$missing >/dev/null; } \
	       || echo "could not install$$missing: the tests that need them will fail or skip"; }

browser: tools

# The country's topology on this machine (tests/topology): a primary and a streaming standby,
# pgbouncer, Redis (127.0.0.1:6379), nginx before two API processes, two workers. A few
# minutes; needs PostgreSQL 15's binaries, pgbouncer, nginx and a running Redis.
topology: $(STAMP) tools
	$(BIN)/python -m pytest -p no:cacheprovider -m topology tests/topology $(PYTEST_ARGS)

# The README's screenshots of the client, phone-sized, taken by the browser tests.
screenshots: $(STAMP) tools
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/web/test_client.py -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(MAKE) typecheck

# Types: mypy with pyproject.toml's [tool.mypy] (strict on familymap, wallet and vouchers; the
# defaults elsewhere). The incremental cache (.mypy_cache) makes a second run take seconds.
typecheck: $(STAMP)
	$(BIN)/mypy

# The committed contract for the mobile teams; tests/api/test_schema_contract.py keeps it in step.
schema: $(STAMP)
	$(BIN)/strawberry export-schema app.schema_export:schema --output schema.graphql

# The npm tools the API's contract tests drive (ignored folder .tools/api): graphql-http's
# GraphQL-over-HTTP audits and graphql-codegen with typescript-operations.
API_TOOLS := .tools/api
API_PACKAGES := graphql@16.15.0 graphql-http@1.23.1 @graphql-codegen/cli@7.4.3 \
	@graphql-codegen/typescript@6.1.0 @graphql-codegen/typescript-operations@6.1.9
$(API_TOOLS)/.installed:
	mkdir -p $(API_TOOLS)
	cd $(API_TOOLS) && npm install --no-audit --no-fund --loglevel=error $(API_PACKAGES)
	touch $@
api-tools: $(API_TOOLS)/.installed

# What a mobile team's build does: TypeScript types for every client operation, generated from
# the committed schema.graphql (into .tools/api/out; a test runs it too).
codegen: api-tools
	$(BIN)/python -m tests.api.codegen schema.graphql $(API_TOOLS)/out

clean:
	rm -rf $(VENV) var .pytest_cache .tools
