# Two commands: `make run` serves taskstream on this machine, `make test` runs every check.
# Each creates .venv and installs what it needs, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean chromium

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The client SDK is its own distribution (clients/python); the CLI and the tests use it.
	$(BIN)/pip install --quiet -e clients/python -e '.[test]'
	# Swagger UI 5 static files only (see services/surfaces/kit/openapi.py): no FastAPI is installed.
	$(BIN)/pip install --quiet --no-deps 'fastapi-swagger==0.4.64'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/taskstream dev $(ARGS)

# The dashboard's browser tests drive Debian's chromium (Playwright never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get install -y chromium >/dev/null 2>&1 || \
		{ apt-get update && apt-get install -y chromium; }; }

test: $(STAMP) chromium
	$(BIN)/ruff check domain projections infra services scripts tests clients
	$(BIN)/mypy --strict domain clients/python/taskstream_client
	$(BIN)/python -m pytest -q -m 'not slow' $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python scripts/bench/create_tasks.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
