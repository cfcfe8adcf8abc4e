# The two commands of the README: `make run` and `make test` (`make test-fast` leaves out the long proofs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.toml
# The sample supplier's SFTP and console password (README, "Try it"), the sample recipient's and an operator's
# console passwords (README, "Console").
SAMPLE_PASSWORD ?= acme-demo
RECIPIENT_PASSWORD ?= mairie-demo
OPERATOR_PASSWORD ?= ops-demo
# Made once the samples are loaded: the next `make run` upgrades the database but leaves the directory, the
# accounts and their passwords as they are (an operator may have changed them). Remove it to load them again;
# with another CONFIG (another data_dir), give its own.
SAMPLES_LOADED ?= var/samples-loaded

.PHONY: run test test-fast lint samples upgrade install bench bench-e2e clean

$(BIN)/gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

# Also fetches the rule packs no installed package ships (CEN's EN 16931 CII stylesheet), once.
install: $(BIN)/gateway
	$(BIN)/gateway --config $(CONFIG) rules fetch

upgrade: install
	$(BIN)/gateway --config $(CONFIG) db upgrade

samples: upgrade $(SAMPLES_LOADED)
	@echo "samples loaded the first time ($(SAMPLES_LOADED)); remove that file to load them (and their passwords) again"

$(SAMPLES_LOADED): | upgrade
	$(BIN)/gateway --config $(CONFIG) directory import samples/directory.csv --services samples/services.csv
	$(BIN)/gateway --config $(CONFIG) accounts import samples/accounts.csv
	printf '%s\n' '$(SAMPLE_PASSWORD)' | $(BIN)/gateway --config $(CONFIG) accounts add acme --update --role supplier --password-stdin
	printf '%s\n' '$(RECIPIENT_PASSWORD)' | $(BIN)/gateway --config $(CONFIG) accounts add mairie-exemple --update --role recipient --password-stdin
	printf '%s\n' '$(OPERATOR_PASSWORD)' | $(BIN)/gateway --config $(CONFIG) operators add ops --password-stdin
	mkdir -p $(@D) && touch $@

run: samples
	$(BIN)/gateway --config $(CONFIG) run

test: install
	$(BIN)/python -m pytest

# ruff (style, imports, likely bugs) and mypy (types of gateway/), configured in pyproject.toml; CI runs it first.
lint: $(BIN)/gateway
	$(BIN)/ruff check .
	$(BIN)/mypy

# A developer's loop: every test but the long proofs marked `slow` (crashes, several processes, full disk...).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install bench-e2e
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/validate.py

# SFTP to report on SQLite and PostgreSQL with 1 and 2 worker processes, against the raw rules rate (minutes).
bench-e2e: install
	$(BIN)/python benchmarks/e2e.py

clean:
	rm -rf var .pytest_cache
