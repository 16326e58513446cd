# Fleetwire developer and CI entry points. `make test` is what CI runs (.ci/run).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
UV ?= uv

.PHONY: test unit dev bootstrap sync lint fmt pytest images stress

## test: install/start services, sync the workspace, lint, type-check, run every test (in order)
test:
	scripts/bootstrap.sh
	$(UV) sync --all-packages --frozen
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run pytest

## unit: the fast tier for the inner loop: no Docker, no broker, no database (about 20 s)
unit:
	$(UV) run pytest -q -m "not (docker or mosquitto or amqtt or postgres or database or slow)"

## stress: the full suite with `stress-ng --cpu 2` running beside it (the busy-machine check)
stress:
	scripts/bootstrap.sh
	scripts/stress-test.sh

## dev: install what is missing, then run the whole system embedded (`fleetwire dev`)
dev:
	scripts/bootstrap.sh
	$(UV) sync --all-packages --frozen
	$(UV) run fleetwire dev

## bootstrap: install and start Docker, PostgreSQL 15, the Mosquitto binaries, busybox, uv
bootstrap:
	scripts/bootstrap.sh

## sync: install the locked workspace (all members, dev group) into .venv
sync:
	$(UV) sync --all-packages --frozen

## lint: ruff (lint and format check) and mypy --strict
lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

## fmt: format and apply safe lint fixes
fmt:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

## pytest: run the tests only (services must be up: make bootstrap)
pytest:
	$(UV) run pytest

## images: build the base image (if missing), fleetwire/cloud and fleetwire/edge
images:
	scripts/build-images.sh
