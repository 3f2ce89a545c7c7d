# Retain: `make run` and `make test` are all a new machine needs (Python 3.11, git, make, npm).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.install-stamp
VENDOR := web/static/vendor
ASSET_STAMP := $(VENDOR)/.stamp

.PHONY: install run test lint bench lock clean

install: $(PY_STAMP) $(ASSET_STAMP)

$(PY_STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

# Front-end assets come from the npm registry and are served locally (no CDN).
$(ASSET_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/swagger-ui
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/@picocss/pico/css/pico.min.css $(VENDOR)/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/swagger-ui/
	touch $@

run: install
	$(BIN)/retain migrate
	$(BIN)/retain demo --if-empty
	$(BIN)/retain serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: install
	@for script in bench/[!_]*.py; do echo "# $$script"; $(BIN)/python $$script || exit 1; done

# Re-resolve the newest versions and write them to requirements.lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache .mypy_cache .ruff_cache
