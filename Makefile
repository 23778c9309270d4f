# llm-sidecar: `make run` serves the default config on 127.0.0.1:4000, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*)
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz chromium bench clean bytecode

install: $(STAMP)

# Core, every built-in plugin and the example third-party plugin, all as editable installs.
$(STAMP): setup.cfg $(wildcard plugins/*/setup.cfg) tests/example_plugin/setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e $(p)) -e tests/example_plugin
	touch $@

# Bytecode for the sidecar and its plugins, as a wheel install would leave it: start-up then reads
# it instead of compiling every module (PYTHONDONTWRITEBYTECODE, set on some machines, stops
# Python from writing it itself). Files already up to date are skipped.
bytecode: install
	$(BIN)/python -m compileall -q sidecar plugins >/dev/null

run: install bytecode
	$(BIN)/sidecar serve --config config/sidecar.yaml --host 127.0.0.1 --port 4000

# The whole suite twice: on the lean upstream client (the default), then on aiohttp's ClientSession
# (general_settings.upstream_http_client), less the tests that never reach an upstream client
# (the browser, the fuzzing and the lean client's own).
AIOHTTP_CLIENT_SKIP := --ignore=tests/test_docs_browser.py --ignore=tests/test_schemathesis.py --ignore=tests/test_httpclient.py \
	--ignore=tests/test_httpclient_connect.py
# SIDECAR_REQUIRE_LITELLM_CORPUS: LiteLLM's example configs must be had (tests/litellm_corpus.py), not skipped.
test: install chromium
	SIDECAR_REQUIRE_LITELLM_CORPUS=1 $(BIN)/python -m pytest -q
	SIDECAR_REQUIRE_LITELLM_CORPUS=1 SIDECAR_UPSTREAM_HTTP_CLIENT=aiohttp $(BIN)/python -m pytest -q $(AIOHTTP_CLIENT_SKIP)

# Debian's Chromium, for the test that loads /docs in a real browser (tests/test_docs_browser.py).
chromium:
	command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }

# Property-based tests of every route from /openapi.json (tests/test_schemathesis.py), longer than
# make test's: FUZZ_EXAMPLES per route, with schemathesis's coverage phase on every route, from a
# random seed it prints; make fuzz FUZZ_SEED=<seed> replays a run. A few minutes.
FUZZ_EXAMPLES ?= 200
FUZZ_SEED ?= $(shell date +%s)
FUZZ_SEED := $(FUZZ_SEED)
fuzz: install
	@echo "make fuzz FUZZ_SEED=$(FUZZ_SEED) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES)  (to replay this run)"
	SIDECAR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SIDECAR_FUZZ_SEED=$(FUZZ_SEED) \
		$(BIN)/python -m pytest -q tests/test_schemathesis.py --hypothesis-seed=$(FUZZ_SEED)

# Benchmarks against the direct upstream and LiteLLM's proxy (bench/README.md), ~5 minutes.
# Installs wrk from Debian if missing; LiteLLM goes into bench/.venv-litellm on first use.
# Extra options: make bench BENCH_ARGS="--no-litellm --duration 3"
bench: install bytecode
	command -v wrk >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info sidecar.db sidecar.db-*
