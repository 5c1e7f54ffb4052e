# phoenix developer targets. `make help` lists them.
export GOTOOLCHAIN := go1.27.3
GO       ?= go
BIN      ?= bin/phoenix
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/phoenix-hypervisor/phoenix/internal/cli.Version=$(VERSION)
DEMO_STATE ?= .demo-state

.PHONY: help build test test-go test-race check-monitoring demo demo-controller bench bench-go lint fmt fuzz staticcheck vulncheck static fake-cluster

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/phoenix
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/phoenix

test: lint test-go check-monitoring ## everything CI runs: vet, gofmt, Go tests, promtool checks

test-go: ## the Go tests
	$(GO) test -count=1 ./...

test-race: ## the Go tests under the race detector
	$(GO) test -count=1 -race ./...

check-monitoring: ## promtool checks of the Prometheus rules (installs promtool when missing)
	bash hack/check-monitoring.sh

demo: ## LetsGo on the example lab, on the simulated host (state in .demo-state/)
	$(GO) run ./cmd/phoenix --config-dir config/examples/lab --scripts-dir config/examples/scripts \
		--state-dir $(DEMO_STATE) --backend sim LetsGo

demo-controller: ## the controller on the example lab, on the simulated host
	$(GO) run ./cmd/phoenix --config-dir config/examples/lab --scripts-dir config/examples/scripts \
		--state-dir $(DEMO_STATE) --backend sim controller

FAKE_CLUSTER_FLAGS ?= -tls
fake-cluster: ## a fake 3-node Proxmox VE API cluster on 127.0.0.1:8006 for --backend pve-api; prints the phoenix flags (files in .fake-cluster/)
	$(GO) run ./hack/fake-cluster -dir .fake-cluster $(FAKE_CLUSTER_FLAGS)

BENCH_FLAGS ?=
bench: ## every row of the performance targets as a table, to stdout and docs/benchmarks.md (BENCH_FLAGS=-h lists the knobs)
	$(GO) run ./hack/bench $(BENCH_FLAGS)

bench-go: ## Go benchmarks of the hot paths
	$(GO) test -run XXX -bench . -benchmem ./...

# Fuzz budgets are counts of executions, about 20 s each here: a duration
# budget trips a race in Go 1.26's fuzzing coordinator (golang/go#75804),
# which fails the run with "context deadline exceeded" and no crasher.
FUZZ_LOAD_EXECS ?= 40000x
FUZZ_GRAPH_EXECS ?= 60000x
FUZZ_FAST_EXECS ?= 400000x
fuzz: ## run each fuzz target for a fixed number of executions (about 20 s each here)
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzLoad$$' -fuzztime $(FUZZ_LOAD_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzGraph$$' -fuzztime $(FUZZ_GRAPH_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzFastSpec$$' -fuzztime $(FUZZ_FAST_EXECS) -fuzzminimizetime 0

STATICCHECK_VERSION ?= v0.8.2
staticcheck: ## staticcheck (installed with go install when missing)
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" staticcheck ./...

vulncheck: ## govulncheck against the vulnerability database from the module proxy
	bash hack/vulncheck.sh

static: lint staticcheck vulncheck ## every static check CI runs

lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$($$($(GO) env GOROOT)/bin/gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

fmt: ## gofmt the tree
	$$($(GO) env GOROOT)/bin/gofmt -w $$(git ls-files '*.go')
