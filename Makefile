# make demo: deploy the sample app to a local systemd container and show the page nginx serves.
# make test: lint, the app's tests and every Molecule scenario. Both set up what they need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export MOLECULE_DISTRO ?= 12

DEMO_CONTAINER := flask-gunicorn-demo
DEMO_PORT ?= 8080
IMAGE := flask-gunicorn-test/debian:$(MOLECULE_DISTRO)
# Every scenario runs on MOLECULE_DISTRO; the smoke path (one host: converge, idempotence, the
# default scenario's verify) also runs on each Debian release in MATRIX. Two lanes run side by side
# (scripts/test-molecule.sh), each about half of the total time; NAME@DISTRO picks a release. Both
# smoke runs stay in one lane: they share the scenario's Molecule state directory.
MATRIX ?= 11 13
LANES ?= "smoke@11 smoke@13 cluster acme workers default" "resilience instances hardened collection"
# Each part of make test adds a line "<seconds> s  <part>" here; the summary prints at the end.
TIMES := $(CURDIR)/.make-test-times
timed = started=$$(date +%s); $(2); echo "$$(( $$(date +%s) - started )) s  $(1)" | tee -a $(TIMES)

.PHONY: help venv docker image demo demo-clean lint docs bench bench-quick test test-quick test-unit test-molecule clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt app/requirements.txt app/pyproject.toml
	@echo "==> Installing the pinned Python tooling into $(VENV)"
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e app
	touch $@

venv: $(VENV)/.installed ## Create .venv with the pinned tools

docker: ## Start the Docker engine when it is not running
	@scripts/ensure-docker.sh

image: docker ## Build the systemd test image for MOLECULE_DISTRO (11, 12, 13) when missing
	@scripts/build-image.sh $(MOLECULE_DISTRO)

demo: venv image ## Deploy the sample app to a local container and print the page
	@scripts/demo.sh $(DEMO_CONTAINER) $(IMAGE) $(DEMO_PORT)

demo-clean: ## Remove the demo container
	-docker rm -f $(DEMO_CONTAINER)

lint: venv ## yamllint, ansible-lint (production profile) and ruff
	@echo "==> yamllint"
	yamllint --strict .
	@echo "==> ansible-lint"
	ansible-lint
	@echo "==> ruff"
	ruff check .
	ruff format --check .

docs: venv ## Rewrite the READMEs' variable tables from the roles' meta/argument_specs.yml
	@python scripts/role_docs.py

# The app's tests on PostgreSQL fail here when its server cannot start; a developer's plain pytest
# without PostgreSQL skips them.
test-unit: venv ## The sample app's tests (SQLite and PostgreSQL) and the role's interface tests (pytest)
	@scripts/ensure-postgresql.sh
	@echo "==> pytest app tests"
	pytest -q app tests

test-molecule: venv docker ## Every Molecule scenario in two parallel lanes, and the smoke path on each release of MATRIX
	@for distro in $(MATRIX) $(MOLECULE_DISTRO); do scripts/build-image.sh $$distro; done
	@scripts/test-molecule.sh $(TIMES) $(LANES)

test-quick: venv docker ## A developer's loop: lint, unit tests and the smoke path on MOLECULE_DISTRO
	@rm -f $(TIMES)
	@$(call timed,lint,$(MAKE) --no-print-directory lint)
	@$(call timed,unit tests,$(MAKE) --no-print-directory test-unit)
	@scripts/build-image.sh $(MOLECULE_DISTRO)
	@scripts/test-molecule.sh $(TIMES) smoke
	@echo "==> make test-quick: the time of each part"; cat $(TIMES)

bench: venv image ## Benchmark the role's stack against the seed's setup (about 21 min); writes docs/benchmarks.md
	@python bench/bench.py --image $(IMAGE)

bench-quick: venv image ## A short bench while developing (2 s runs, 2 settings, about 4 min); writes to /tmp
	@python bench/bench.py --image $(IMAGE) --quick --container flask-gunicorn-bench-quick

test: venv docker ## Everything: lint, unit tests, every Molecule scenario; prints each part's time
	@rm -f $(TIMES)
	@$(call timed,lint,$(MAKE) --no-print-directory lint)
	@$(call timed,unit tests,$(MAKE) --no-print-directory test-unit)
	@$(MAKE) --no-print-directory test-molecule
	@echo "==> make test: the time of each part"; cat $(TIMES)

clean: demo-clean ## Remove the venv and the demo container
	rm -rf $(VENV)
