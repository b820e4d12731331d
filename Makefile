# vm-registry-operator — make demo (the main job) and make test (everything).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# npm installs a pinned Node (the "node" devDependency) into node_modules/.bin.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

DEPS_STAMP := node_modules/.deps-stamp
TEST_FLAGS ?= --test-reporter=spec

.PHONY: all deps tools build lint typecheck manifests test test-unit test-integration demo dev bench install deploy docker-build clean

all: build

$(DEPS_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v24\.' || { echo "expected the pinned Node 24 from node_modules/.bin"; exit 1; }
	@touch $@

deps: $(DEPS_STAMP)

build: deps
	tsc -p tsconfig.build.json

typecheck: deps
	tsc -p tsconfig.json

manifests: deps
	node src/dev/generate-manifests.ts

lint: typecheck

# Builds (first run) or finds (cached) every real component the tests start, with progress.
tools: deps
	node test/harness/prepare-tools.ts

test: deps lint tools
	node --test --test-concurrency=1 $(TEST_FLAGS) 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'

test-unit: deps
	node --test $(TEST_FLAGS) 'test/unit/**/*.test.ts'

test-integration: deps tools
	node --test --test-concurrency=1 $(TEST_FLAGS) 'test/integration/**/*.test.ts'

demo: deps
	node src/cli/main.ts demo

dev: deps
	node src/cli/main.ts dev --consul

# Against a real cluster (kubectl's current context).
install: deps
	kubectl apply --server-side -k config/crd

deploy: install
	kubectl apply --server-side -k config/default

docker-build:
	docker build -t vm-registry-operator:$$(node -p 'require("./package.json").version') .

bench: deps
	node bench/data-cost.ts
	node bench/run.ts

clean:
	rm -rf dist node_modules
