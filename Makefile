# Two commands: `make run` (embedded default) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
WEBSTAMP := clients/web/node_modules/.package-lock.json
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CODE   := protocol storage server clients loadtest tests

.PHONY: run web test services lint typecheck format bench lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Dependencies come from the lock files (every version pinned, with its hashes: what CI
# tested); the project itself is then installed without resolving anything again.
# requirements/run.txt: the server; requirements/dev.txt: also the tests, the load
# generator and the seed data (extras dev, loadtest, seed). `make lock` renews both.
$(STAMP): pyproject.toml requirements/run.txt | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r requirements/run.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(DEVSTAMP): pyproject.toml requirements/dev.txt | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@ $(STAMP)

# Renew the lock files after a change of pyproject.toml's dependencies (newer releases
# of everything: make lock UPGRADE=--upgrade); commit them with the change.
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --universal \
	--python-version 3.11 --no-header --quiet $(UPGRADE)
lock: | $(PY)
	$(PY) -m pip install --quiet uv
	$(LOCK) --extra dev -o requirements/dev.txt
	$(LOCK) -c requirements/dev.txt -o requirements/run.txt

# The web client's npm packages (pinned by package-lock.json), served as ES modules
# without a build step by the server at /.
$(WEBSTAMP): clients/web/package.json clients/web/package-lock.json
	cd clients/web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web: $(WEBSTAMP)

run: $(STAMP) $(WEBSTAMP)
	$(PY) -m server run

# The tests start throwaway redis-server and PostgreSQL instances of their own
# (or use TEST_REDIS_URL / TEST_REDIS_CLUSTER_URL / TEST_DATABASE_URL): make sure the
# binaries are installed (redis-cli creates the throwaway Redis Cluster), and nginx
# (tests/deploy runs README's reverse proxy configuration on ports of its own).
services:
	@if { [ -z "$$TEST_REDIS_URL" ] || [ -z "$$TEST_REDIS_CLUSTER_URL" ]; } \
		&& ! { command -v redis-server && command -v redis-cli; } >/dev/null; then \
		echo "installing redis-server"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; fi
	@if [ -z "$$TEST_DATABASE_URL" ] && ! command -v initdb >/dev/null \
		&& ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; fi
	@if ! [ -x "$${CONFRERE_CHROMIUM:-/usr/bin/chromium}" ]; then \
		echo "installing chromium (web client tests)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; fi
	@if ! command -v nginx >/dev/null && ! [ -x /usr/sbin/nginx ]; then \
		echo "installing nginx (the reverse proxy test runs README's configuration)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nginx \
		&& { $(SUDO) service nginx stop >/dev/null 2>&1 || true; }; fi

# pytest runs on every core (pytest-xdist, -n auto): each worker starts services of its
# own (session fixtures), on unix sockets in temp dirs or on ports the OS chose; tests that
# share a module fixture carry an xdist_group mark (--dist loadgroup keeps them together).
test: $(DEVSTAMP) services $(WEBSTAMP)
	$(PY) -m ruff check $(CODE)
	$(PY) -m ruff format --check $(CODE)
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n auto --dist loadgroup

lint: $(DEVSTAMP)
	$(PY) -m ruff check $(CODE)
	$(VENV)/bin/lint-imports

format: $(DEVSTAMP)
	$(PY) -m ruff format $(CODE)
	$(PY) -m ruff check --fix $(CODE)

typecheck: $(DEVSTAMP)
	$(PY) -m mypy

# Fan-out saturation against the floor server (< 10 min); see README "Load testing".
# The load generator is the `loadtest` extra, in the dev lock.
bench: $(DEVSTAMP)
	$(PY) -m loadtest bench --report var/bench.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
