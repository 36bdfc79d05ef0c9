# The two commands: `make run` (the whole system, embedded default) and `make test`.
# `make cluster`: the production shape on one machine; `make test-cluster`: its test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test bench bench-scale simulate lint format typecheck clean reset install cluster \
	test-cluster

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "▸ Preparing the virtual environment in $(VENV)…"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	@DEV_PAGES=1 $(BIN)/assistance dev

test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

# Three NATS nodes, two replicas of every part and two workers behind HAProxy
# (apt-get install haproxy): deploy/local/cluster.py.
cluster: $(STAMP)
	@DEV_PAGES=1 $(BIN)/assistance cluster

test-cluster: $(STAMP)
	@$(BIN)/python -m pytest tests/cluster -m cluster $(PYTEST_ARGS)

bench: $(STAMP)
	@$(BIN)/python -m bench $(BENCH_ARGS)

# Many dossiers open at once (docs/benchmarks.md, "Scale runs"): e.g.
# make bench-scale SCALE_ARGS="--levels 1000 --closed 20000"
bench-scale: $(STAMP)
	@$(BIN)/python -m bench.scale $(SCALE_ARGS)

# Four simulated weeks of the centre (the default scenario: 100 requests a business day, four
# technicians) on Temporal's time-skipping server; the report goes to data/simulation/.
# SIMULATE_ARGS changes it, e.g. SIMULATE_ARGS="--technicians 5" or "--find-staffing".
simulate: $(STAMP)
	@$(BIN)/assistance simulate $(SIMULATE_ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

format: $(STAMP)
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

# Empties data/ (demo data, tokens, Temporal, NATS and PostgreSQL data); keeps .venv.
reset:
	@if [ -f data/dev-state.json ]; then \
		echo "make run tourne encore (data/dev-state.json) : arrêtez-le d'abord (Ctrl-C)."; \
		echo "S'il s'est arrêté brutalement, supprimez data/dev-state.json puis relancez."; \
		exit 1; fi
	@if [ -d data ]; then find data -mindepth 1 -delete; fi
	@echo "▸ data/ vidé ; .venv gardé. Le prochain make run repart de zéro."

clean:
	rm -rf $(VENV) data test-artifacts

# The site (services/site): its French catalogue, and the screenshots shown in the README.
.PHONY: site-messages screenshots simulation-screenshot
SITE := services/site
site-messages: $(STAMP)
	@$(BIN)/pybabel extract -F $(SITE)/babel.cfg -k N_ -k tr:2 --no-location --sort-output \
		--omit-header -o $(SITE)/locale/messages.pot $(SITE)
	@$(BIN)/pybabel update -i $(SITE)/locale/messages.pot -d $(SITE)/locale -l fr \
		--no-fuzzy-matching --ignore-obsolete
	@$(BIN)/pybabel compile -d $(SITE)/locale -l fr --statistics

screenshots: $(STAMP)
	@SITE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/services/site -k browser $(PYTEST_ARGS)

# The README's picture of the simulation report (after `make simulate`), in Debian's Chromium.
simulation-screenshot: $(STAMP)
	@$(BIN)/python -m simulation.screenshot data/simulation/rapport.html docs/screenshots/simulation.png
