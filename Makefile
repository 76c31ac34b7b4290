# Two commands for a newcomer: `make run` and `make test`. Each builds .venv from the pinned
# requirements first (only when they changed), so nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
HOSPITAL ?= infra/hospitals/example.json
STAMP  := $(VENV)/.installed

ASL    := tools/asl/node_modules/.bin/asl-validator
TSC    := tools/openapi-ts/node_modules/.bin/tsc
IAMSIM := tools/iam-simulate/node_modules/.stamp

.PHONY: run onboard test $(addprefix test-,unit services integration journeys faults infra) lint typecheck package bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# npm's asl-validator catches what cfn-lint and moto miss (unreachable states, missing targets).
$(ASL): tools/asl/package.json tools/asl/package-lock.json
	cd tools/asl && npm ci --silent --no-audit --no-fund
	touch $(ASL)

# openapi-typescript and tsc: the client-generation test compiles a TypeScript client's types.
$(TSC): tools/openapi-ts/package.json tools/openapi-ts/package-lock.json
	cd tools/openapi-ts && npm ci --silent --no-audit --no-fund
	touch $(TSC)

# @cloud-copilot/iam-simulate: the permissions tier evaluates each function's recorded AWS calls
# against its own IAM policy, conditions included (moto enforces no IAM).
$(IAMSIM): tools/iam-simulate/package.json tools/iam-simulate/package-lock.json
	cd tools/iam-simulate && npm ci --silent --no-audit --no-fund
	touch $(IAMSIM)

run: $(STAMP)
	$(PY) -m local serve --port $(PORT)

# A hospital's stack (infra/hospital.yaml) into the server `make run` started: HOSPITAL=<file>.
onboard: $(STAMP)
	$(PY) -m local onboard $(HOSPITAL) --server http://127.0.0.1:$(PORT) $(if $(DELETE),--delete)

# The suite records every AWS call each function makes (build/aws-calls); the permissions tier
# then checks them against the packaged policies.
test: $(STAMP) $(TSC) $(IAMSIM) lint typecheck
	$(PY) -m pytest
	$(PY) -m pytest -n0 tests/permissions

# One tier alone while working on a change: make test-unit, test-services (in-memory fakes,
# milliseconds), test-integration, test-journeys, test-faults, test-infra. `make test` runs them
# all (and the permissions tier, which checks the AWS calls the others recorded).
TIERS := unit services integration journeys faults infra
$(addprefix test-,$(TIERS)): test-%: $(STAMP) $(TSC)
	$(PY) -m pytest tests/$*

lint: $(STAMP) $(ASL)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(ASL) --silent $(addprefix --json-path ,$(wildcard statemachines/*.asl.json))

typecheck: $(STAMP)
	$(PY) -m mypy

# A deployable template for one stage: build/<stage>/sam.json (every name the stage's).
STAGE ?= prod
REGION ?= us-east-1
package: $(STAMP)
	$(PY) infra/package.py --stage $(STAGE) --region $(REGION)

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .local bench/results.json tools/asl/node_modules \
		tools/openapi-ts/node_modules tools/iam-simulate/node_modules
