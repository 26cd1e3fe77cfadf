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
# The default scenario runs on every Debian release in MATRIX; the other scenarios on MOLECULE_DISTRO.
MATRIX ?= 11 12 13
SCENARIOS := resilience hardened collection instances cluster

.PHONY: help venv docker image demo demo-clean lint docs bench test test-unit test-molecule clean

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

test-unit: venv ## The sample app's tests and the role's interface tests (pytest)
	@echo "==> pytest app tests"
	pytest -q app tests

test-molecule: venv docker ## Every Molecule scenario (default on each release of MATRIX), each timed
	@for distro in $(MATRIX); do \
		scripts/build-image.sh $$distro; \
		echo "==> molecule test -s default (Debian $$distro)"; \
		started=$$(date +%s); \
		MOLECULE_DISTRO=$$distro molecule test -s default; \
		echo "==> molecule test -s default (Debian $$distro) took $$(( $$(date +%s) - started )) s"; \
	done
	@scripts/build-image.sh $(MOLECULE_DISTRO)
	@for scenario in $(SCENARIOS); do \
		echo "==> molecule test -s $$scenario (Debian $(MOLECULE_DISTRO))"; \
		started=$$(date +%s); \
		molecule test -s $$scenario; \
		echo "==> molecule test -s $$scenario took $$(( $$(date +%s) - started )) s"; \
	done

bench: venv image ## Benchmark the role's stack against the seed's setup; writes docs/benchmarks.md
	@python bench/bench.py --image $(IMAGE)

test: lint test-unit test-molecule ## Everything: lint, app tests, Molecule

clean: demo-clean ## Remove the venv and the demo container
	rm -rf $(VENV)
