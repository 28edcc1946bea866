# welcome-pipeline. Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13, as the template's runtime: on PATH, or from pyenv.
PYTHON313 ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.dev-installed
LINT_STAMP := $(VENV)/.lint-installed
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
LOCALCLOUD := $(BIN)/localcloud
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv test test-unit test-e2e test-ministack test-localstack lint audit demo up logs events build deploy deploy-localstack env-localstack stop clean bench bench-rate chaos docker-up lambda-image test-sam-local mutation lock console-screenshot

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is needed (python3.13 on PATH, or pyenv install 3.13)"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(DEV_STAMP): requirements-dev.txt functions/requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes --no-deps -r functions/requirements.txt
	grep -oE '^[A-Za-z0-9_.-]+==[^ ]+' functions/requirements.txt > $(VENV)/function-pins.txt
	$(BIN)/pip install -q -r requirements-dev.txt -c $(VENV)/function-pins.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

$(LINT_STAMP): requirements-lint.txt $(DEV_STAMP)
	$(BIN)/pip install -q -r requirements-lint.txt
	@touch $@

$(SCAN_STAMP): requirements-scan.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is needed (python3.13 on PATH, or pyenv install 3.13)"; exit 1; }
	$(PYTHON313) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q --upgrade pip
	$(SCAN_VENV)/bin/pip install -q -r requirements-scan.txt
	@touch $@

MUTATION_VENV := .venv-mutation
MUTATION_STAMP := $(MUTATION_VENV)/.installed

$(MUTATION_STAMP): requirements-mutation.txt functions/requirements.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is needed (python3.13 on PATH, or pyenv install 3.13)"; exit 1; }
	$(PYTHON313) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/pip install -q --upgrade pip
	$(MUTATION_VENV)/bin/pip install -q --require-hashes --no-deps -r functions/requirements.txt
	grep -oE '^[A-Za-z0-9_.-]+==[^ ]+' functions/requirements.txt > $(MUTATION_VENV)/function-pins.txt
	$(MUTATION_VENV)/bin/pip install -q -r requirements-mutation.txt -c $(MUTATION_VENV)/function-pins.txt
	@touch $@

# Emulators nobody on this team wrote, each in a virtual environment of its own (tests/peers/).
MINISTACK_STAMP := .venv-ministack/.installed
LOCALEMU_STAMP := .venv-localemu/.installed

$(MINISTACK_STAMP) $(LOCALEMU_STAMP): .venv-%/.installed: tests/peers/requirements-%.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is needed (python3.13 on PATH, or pyenv install 3.13)"; exit 1; }
	rm -rf .venv-$* && $(PYTHON313) -m venv .venv-$*
	.venv-$*/bin/pip install -q --upgrade pip
	.venv-$*/bin/pip install -q -r $<
	@touch $@

venv: $(DEV_STAMP) ## create .venv (Python 3.13) with everything tests and the local cloud need

test: $(DEV_STAMP) ## all tests: unit (moto in-process) and end-to-end (an embedded local cloud of their own)
	env -u AWS_ENDPOINT_URL $(BIN)/python -m pytest

test-unit: $(DEV_STAMP) ## the domain on in-memory fakes (seconds)
	env -u AWS_ENDPOINT_URL $(BIN)/python -m pytest tests/unit

test-sam-local: lambda-image ## `sam local invoke` of the three functions, in Docker, against an embedded local cloud
	env -u AWS_ENDPOINT_URL WELCOME_SAM_LOCAL=required $(BIN)/python -m pytest tests/sam_local

docker-up: ## Docker for sam local invoke: docker.io installed if missing, dockerd started without a bridge
	localcloud/image/docker-up.sh

lambda-image: $(DEV_STAMP) docker-up ## public.ecr.aws/lambda/python:3.13-<arch>, built here from Debian + PyPI (cached)
	localcloud/image/build.sh

test-e2e: $(DEV_STAMP) ## end-to-end tests only; against $$AWS_ENDPOINT_URL if set (a LocalStack), else their own cloud
	$(BIN)/python -m pytest tests/e2e

test-ministack: $(DEV_STAMP) $(MINISTACK_STAMP) ## the end-to-end tests against ministack (an independent LocalStack-like emulator; no Docker)
	env -u AWS_ENDPOINT_URL $(BIN)/python -m tests.peers.run ministack

test-localstack: $(DEV_STAMP) $(LOCALEMU_STAMP) lambda-image ## the end-to-end tests against localemu (LocalStack's community fork; Lambda in Docker)
	env -u AWS_ENDPOINT_URL $(BIN)/python -m tests.peers.run localemu

lint: $(LINT_STAMP) $(SCAN_STAMP) ## ruff (C901 <= 12), import contracts, mypy (--strict on the Lambda code), sam validate --lint, cfn-lint, bandit, checkov (both EmailProvider variants), pip-audit
	$(BIN)/ruff check functions localcloud tests bench
	PYTHONPATH=functions $(SCAN_VENV)/bin/lint-imports
	$(SCAN_VENV)/bin/mypy --python-executable $(BIN)/python --strict -p common -p parse_csv -p send_email -p ses_events
	$(SCAN_VENV)/bin/mypy --python-executable $(BIN)/python localcloud
	$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml
	$(BIN)/bandit -q -r functions localcloud bench
	$(SCAN_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download
	@# checkov keeps only the resources whose conditions hold with the parameters' defaults: scan the SES variant too.
	@mkdir -p .localcloud && sed 's/^    Default: simulated$$/    Default: ses/' template.yaml > .localcloud/template-ses.yaml
	@grep -q '^    Default: ses$$' .localcloud/template-ses.yaml || { echo "lint: no EmailProvider default to switch"; exit 1; }
	$(SCAN_VENV)/bin/checkov -f .localcloud/template-ses.yaml --framework cloudformation --compact --quiet --skip-download
	@$(MAKE) --no-print-directory audit

# pip-audit asks PyPI's JSON API for known vulnerabilities; a machine that cannot reach it says so loudly.
audit: $(SCAN_STAMP) ## pip-audit of the pinned requirements (function and development)
	@if $(SCAN_VENV)/bin/python -c 'import json, urllib.request; json.load(urllib.request.urlopen("https://pypi.org/pypi/pip-audit/2.10.1/json", timeout=10))' 2>/dev/null; then \
		$(SCAN_VENV)/bin/pip-audit --strict -r functions/requirements.txt -r requirements-dev.txt; \
	else \
		echo "pip-audit: NOT AUDITED - PyPI's vulnerability API (https://pypi.org/pypi/<name>/<version>/json) is unreachable from this machine"; \
	fi

demo: $(DEV_STAMP) ## the main job on the embedded local cloud: two sample files, one summary
	@$(LOCALCLOUD) stop >/dev/null
	$(LOCALCLOUD) sample demo/contacts-a.csv --rows 2500 --invalid-every 97
	$(LOCALCLOUD) sample demo/contacts-b.csv --rows 1500 --start 2000
	$(LOCALCLOUD) run demo/contacts-a.csv demo/contacts-b.csv

up: $(DEV_STAMP) ## emulator on 127.0.0.1:4566 + deploy + functions, until Ctrl-C
	$(LOCALCLOUD) up --verbose

logs: $(DEV_STAMP) ## send_email's logs (FUNCTION=ParseCsvFunction for the other one)
	$(LOCALCLOUD) logs $(or $(FUNCTION),SendEmailFunction)

events: $(DEV_STAMP) ## events/*.json for the deployed stack (sam local invoke -e, localcloud invoke -e)
	$(LOCALCLOUD) events

lock: ## functions/requirements.txt from functions/requirements.in: every package pinned, with its hashes (pip-compile)
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is needed"; exit 1; }
	rm -rf .venv-lock && $(PYTHON313) -m venv .venv-lock && .venv-lock/bin/pip install -q pip-tools==7.6.2
	cd functions && ../.venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in

build: $(LINT_STAMP) ## sam build (python3.13 on PATH)
	PATH="$(dir $(PYTHON313)):$$PATH" $(BIN)/sam build

deploy: build ## sam deploy --guided to your AWS account (EmailProvider=ses for real email)
	$(BIN)/sam deploy --guided

deploy-localstack: $(DEV_STAMP) ## the same stack on a LocalStack (LOCALSTACK=http://localhost:4566), local parameter values
	$(LOCALCLOUD) deploy --endpoint $(or $(LOCALSTACK),http://localhost:4566)

env-localstack: $(DEV_STAMP) ## env.localstack.json for `sam local invoke --env-vars`, from the LocalStack stack
	$(LOCALCLOUD) --endpoint $(or $(LOCALSTACK),http://localhost:4566) env-vars > env.localstack.json
	@echo "wrote env.localstack.json"

stop: $(DEV_STAMP) ## stop the emulator at the endpoint (127.0.0.1:4566, or AWS_ENDPOINT_URL)
	$(LOCALCLOUD) stop

clean: ## stop the emulator, remove the venv and build output
	-@test -x $(BIN)/python && $(LOCALCLOUD) stop
	rm -rf $(VENV) $(SCAN_VENV) $(MUTATION_VENV) .venv-lock .venv-ministack .venv-localemu .mutation .aws-sam \
		.localcloud .pytest_cache .ruff_cache .hypothesis demo/*.csv

bench-rate: $(DEV_STAMP) ## MaxSendRate honoured: peak sends in any second vs the limit; writes bench/rate.md
	$(BIN)/python -m bench.run --sizes $(or $(SIZE),3000) --max-send-rate $(or $(RATE),100)

mutation: $(MUTATION_STAMP) ## mutmut on the at-most-once core with the fast tests: score per module, every survivor
	$(MUTATION_VENV)/bin/python tests/mutation/run.py

chaos: $(DEV_STAMP) ## SIGKILL environments, the template process and the runtime during a 6,000-row run; checks nothing lost or sent twice
	$(BIN)/python -m bench.chaos --rows $(or $(ROWS),6000) --seconds $(or $(SECONDS),30) --seed $(or $(SEED),1)

console-screenshot: $(DEV_STAMP) ## docs/console.png: the console while a sample file is sent (run after make demo)
	$(BIN)/python -m bench.console_screenshot

bench: $(DEV_STAMP) ## end-to-end benchmark, 10k and 100k contacts x 3 runs (~15 min; SIZES=10000 RUNS=1 for a quick one); writes bench/results.md
	$(BIN)/python -m bench.run --sizes $(or $(SIZES),10000 100000) --runs $(or $(RUNS),3)
	$(BIN)/python -m localcloud sample /tmp/welcome-bench-parse.csv --rows $(or $(PARSE_ROWS),1000000) >/dev/null
	$(BIN)/python -m bench.parse_only /tmp/welcome-bench-parse.csv
