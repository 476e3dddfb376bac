# The two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench bench-profile deps web clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP) web
	$(BIN)/gossamer demo $(ARGS)

test: $(STAMP)
	scripts/install-debian-deps.sh test
	$(MAKE) web
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The dashboard's browser libraries (uPlot, cytoscape, js-yaml) from npm, pinned by
# web/package-lock.json, into web/node_modules (not committed; the control plane serves
# them from there). Without npm the dashboard still works: tables instead of charts.
WEB_STAMP := web/node_modules/.installed
$(WEB_STAMP): web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error && touch $@; \
	else echo "npm not found (scripts/install-debian-deps.sh test installs it): the dashboard will show tables without charts"; fi

web: $(WEB_STAMP)

# The data-path suite against HAProxy and nginx (~11 min on 2 cores): docs/benchmarks.md,
# docs/img/bench-*.png and docs/img/bench-results.json. Not part of `make test`.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	scripts/install-debian-deps.sh bench
	$(BIN)/python -m benchmarks.suite $(ARGS)

# py-spy of both sidecars under wrk load: docs/img/profile-*.svg and profile-top.txt (~1 min).
bench-profile: $(BENCH_STAMP)
	scripts/install-debian-deps.sh bench
	$(BIN)/python -m benchmarks.suite.profile $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) web/node_modules build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
