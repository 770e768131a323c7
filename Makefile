# wedsync-streams developer commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit test-integration lint bench schemas-check clean system-deps \
	deploy-check kafka-jars

PG_BIN ?= /usr/lib/postgresql/15/bin
KAFKA_VERSION := 4.1.1
KAFKA_JARS    := .cache/kafka/$(KAFKA_VERSION)

install: $(STAMP)

$(STAMP): pyproject.toml constraints-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c constraints-dev.txt
	@touch $(STAMP)

run: install system-deps  ## a wedding week: PostgreSQL -> CDC -> worker -> routing -> sinks -> local providers
	$(BIN)/wedsync demo

# Apache Kafka's broker runtime (KRaft) from Maven Central, once: streams/dev/kraft.py starts
# nodes from these jars for the integration, fault and benchmark tiers (WEDSYNC_BROKER=kafka).
kafka-jars: $(KAFKA_JARS)/.complete

$(KAFKA_JARS)/.complete: deploy/kafka/pom.xml
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -Dkafka.version=$(KAFKA_VERSION) \
		-DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(KAFKA_JARS)
	@touch $@

schemas-check: install
	$(BIN)/wedsync schemas check

# Servers (and the browser) the integration tests run for real, and promtool, which checks
# and unit-tests deploy/prometheus (tests/deploy); installed from Debian when missing (CI runs
# as root).
system-deps:
	@test -x $(PG_BIN)/initdb || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null)
	@command -v promtool >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null)
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

test: install schemas-check system-deps kafka-jars
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 3 --dist loadfile

# deploy/: promtool check + unit tests of the rules, the dashboard, compose and Kubernetes
# manifests (part of `make test` too).
deploy-check: install system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/deploy

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install system-deps kafka-jars
	$(BIN)/python -m pytest -q -m integration

lint: install
	$(BIN)/ruff check streams connectors tests bench
	$(BIN)/ruff format --check streams connectors tests bench
	$(BIN)/mypy

bench: install kafka-jars
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .cache
