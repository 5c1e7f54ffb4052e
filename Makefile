# phoenix developer targets. `make help` lists them.
export GOTOOLCHAIN := go1.27.3
GO       ?= go
BIN      ?= bin/phoenix
# Version stamp (see docs/install.md): git describe of the tree, the commit,
# and the commit's date as build date (SOURCE_DATE_EPOCH wins) so that the
# same commit always builds the same bytes.
VERSION  ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.0.0-$$(git rev-list --count HEAD 2>/dev/null || echo 0)-g$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD 2>/dev/null || echo -dirty))
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell if [ -n "$$SOURCE_DATE_EPOCH" ]; then date -u -d "@$$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ; else TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null; fi)
VERSION_PKG := github.com/phoenix-hypervisor/phoenix/internal/version
LDFLAGS  := -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).Date=$(BUILD_DATE)
DEMO_STATE ?= .demo-state

.PHONY: pve-cost help build test test-go test-race check-monitoring prometheus-tools install deb man completions demo demo-controller bench bench-go lint fmt fuzz staticcheck vulncheck static fake-cluster mutate mutate-diff

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/phoenix (static: CGO_ENABLED=0, so the package runs on any Proxmox release)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/phoenix

test: lint test-go check-monitoring ## everything CI runs: vet, gofmt, Go tests, promtool checks

# Nested modules: config/monitoring keeps the PromQL parser (and the
# Prometheus server test) out of phoenix's own go.mod. go test ./... and
# go vet ./... stop at a nested go.mod, so each is run in its own folder.
NESTED_MODULES := config/monitoring

test-go: prometheus-tools ## the Go tests, of the main module and the nested ones
	$(GO) test -count=1 -timeout 30m ./...
	set -e; for m in $(NESTED_MODULES); do (cd $$m && $(GO) test -count=1 ./...); done

test-race: ## the Go tests under the race detector
	$(GO) test -count=1 -race ./...

check-monitoring: prometheus-tools ## promtool checks of the Prometheus rules
	bash hack/check-monitoring.sh

prometheus-tools: ## Debian's prometheus and promtool unpacked into .cache/prometheus (installs nothing)
	bash hack/prometheus-tools.sh

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

pve-cost: ## pct/qm processes and wall time on a provisioned host, fake pct/qm at 0.25 s per call (docs/benchmarks.md)
	bash hack/pve-cost.sh

bench-go: ## Go benchmarks of the hot paths
	$(GO) test -run XXX -bench . -benchmem ./...

# Fuzz budgets are counts of executions, about 20 s each here: a duration
# budget trips a race in Go 1.26's fuzzing coordinator (golang/go#75804),
# which fails the run with "context deadline exceeded" and no crasher.
FUZZ_LOAD_EXECS ?= 40000x
FUZZ_GRAPH_EXECS ?= 60000x
FUZZ_FAST_EXECS ?= 400000x
FUZZ_VALUES_EXECS ?= 4000x
FUZZ_ANSWER_EXECS ?= 20000x
FUZZ_PVE_EXECS ?= 20000x
fuzz: ## run each fuzz target for a fixed number of executions (about 20 s each here)
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzLoad$$' -fuzztime $(FUZZ_LOAD_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzGraph$$' -fuzztime $(FUZZ_GRAPH_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzFastSpec$$' -fuzztime $(FUZZ_FAST_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/desired -run XXX -fuzz '^FuzzValues$$' -fuzztime $(FUZZ_VALUES_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/hypervisor/pveapi -run XXX -fuzz '^FuzzAnswer$$' -fuzztime $(FUZZ_ANSWER_EXECS) -fuzzminimizetime 0
	@for t in FuzzParseConf FuzzParseStatus FuzzParseList FuzzParseImported FuzzDiskGB FuzzParseStorageCfg; do \
		$(GO) test ./internal/hypervisor/pve -run XXX -fuzz "^$$t\$$" -fuzztime $(FUZZ_PVE_EXECS) -fuzzminimizetime 0 || exit 1; done
	$(GO) test ./internal/pveschema -run XXX -fuzz '^FuzzCheck$$' -fuzztime $(FUZZ_PVE_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/hypervisor/guest -run XXX -fuzz '^FuzzExecStatus$$' -fuzztime $(FUZZ_PVE_EXECS) -fuzzminimizetime 0
	$(GO) test ./internal/hypervisor/pveapi -run XXX -fuzz '^FuzzCommandLine$$' -fuzztime $(FUZZ_PVE_EXECS) -fuzzminimizetime 0

# Mutation testing: gremlins pinned, installed with go install (cached after
# the first time). One package at a time, one worker: about a minute per
# mutant on a loaded 2-core machine, so a full run takes hours there.
GREMLINS_VERSION ?= v0.6.0
MUTATE_FLAGS ?=
MUTATE_BASE ?= origin/main
MUTATE_BUDGET ?= 20m
mutate: ## mutation testing (gremlins) of the core packages: efficacy per package and the survivors, to stdout and docs/mutation.md (slow)
	$(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) run ./hack/mutate -out docs/mutation.md $(MUTATE_FLAGS)

mutate-diff: ## mutation testing of the lines changed since MUTATE_BASE, within MUTATE_BUDGET (what CI runs)
	$(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) run ./hack/mutate -diff $(MUTATE_BASE) -budget $(MUTATE_BUDGET) $(MUTATE_FLAGS)

STATICCHECK_VERSION ?= v0.8.2
staticcheck: ## staticcheck (installed with go install when missing)
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" staticcheck ./...

vulncheck: ## govulncheck against the vulnerability database from the module proxy
	bash hack/vulncheck.sh

static: lint staticcheck vulncheck ## every static check CI runs

lint: ## go vet, gofmt, and go mod tidy -diff of every module
	$(GO) vet ./...
	set -e; for m in $(NESTED_MODULES); do (cd $$m && $(GO) vet ./...); done
	set -e; for m in . $(NESTED_MODULES); do (cd $$m && $(GO) mod tidy -diff) || { echo "go mod tidy would change $$m/go.mod or go.sum"; exit 1; }; done
	@out=$$($$($(GO) env GOROOT)/bin/gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

fmt: ## gofmt the tree
	$$($(GO) env GOROOT)/bin/gofmt -w $$(git ls-files '*.go')

# Install and package (docs/install.md). PREFIX and DESTDIR as usual; the
# env file stays in /etc/default whatever PREFIX is, because the unit reads
# it there.
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/phoenix
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR  ?= /etc
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
GENDIR      ?= bin/gen

completions: man
man: ## man pages and bash/zsh/fish completions from the command tree, into bin/gen (hack/gendocs)
	rm -rf $(GENDIR)
	env -u PHOENIX_CONFIG_DIR -u PHOENIX_STATE_DIR -u PHOENIX_SCRIPTS_DIR -u PHOENIX_BACKEND \
		$(GO) run ./hack/gendocs -out $(GENDIR) -version '$(VERSION)' -date '$(BUILD_DATE)'

install: build man ## install binary, unit, /etc/default/phoenix (kept if present), man pages, completions, docs and examples
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR)/monitoring
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/phoenix
	sed 's#@BINDIR@#$(BINDIR)#g' packaging/phoenix-controller.service.in > $(GENDIR)/phoenix-controller.service
	install -m 0644 $(GENDIR)/phoenix-controller.service $(DESTDIR)$(UNITDIR)/phoenix-controller.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/phoenix ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/default/phoenix (the new default is packaging/phoenix.default)"; \
	else install -m 0644 packaging/phoenix.default $(DESTDIR)$(SYSCONFDIR)/default/phoenix; fi
	for f in $(GENDIR)/man/*.1; do gzip -9n < $$f > $(DESTDIR)$(MANDIR)/man1/$${f##*/}.gz; done
	install -m 0644 $(GENDIR)/completions/phoenix.bash $(DESTDIR)$(BASHCOMPDIR)/phoenix
	install -m 0644 $(GENDIR)/completions/_phoenix $(DESTDIR)$(ZSHCOMPDIR)/_phoenix
	install -m 0644 $(GENDIR)/completions/phoenix.fish $(DESTDIR)$(FISHCOMPDIR)/phoenix.fish
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	cp -R docs $(DESTDIR)$(DOCDIR)/
	rm -rf $(DESTDIR)$(DOCDIR)/examples/lab $(DESTDIR)$(DOCDIR)/examples/scripts
	cp -R config/examples/lab config/examples/scripts $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 packaging/pve-api-hardening.conf $(DESTDIR)$(DOCDIR)/examples/
	cp config/prometheus/*.yml config/grafana/*.json $(DESTDIR)$(DOCDIR)/monitoring/
	cp -R config/grafana/provisioning $(DESTDIR)$(DOCDIR)/monitoring/
	@echo "installed; to run the controller: edit $(SYSCONFDIR)/default/phoenix, then systemctl daemon-reload && systemctl enable --now phoenix-controller"

NFPM_VERSION ?= v2.45.2
NFPM         := .cache/bin/nfpm-$(NFPM_VERSION)
# git describe -> Debian version: v1.2.0-5-gabc1234-dirty -> 1.2.0+git5.gabc1234.dirty
# (sorts after 1.2.0), v1.3.0-rc1 -> 1.3.0~rc1 (sorts before 1.3.0).
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)/+git\1.g\2/; s/-dirty$$/.dirty/; s/-/~/g')
DEB_ARCH    ?= $(shell $(GO) env GOARCH)
DEB         := dist/phoenix_$(DEB_VERSION)_$(DEB_ARCH).deb

$(NFPM):
	mkdir -p .cache/bin
	GOBIN=$(CURDIR)/.cache/bin $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv .cache/bin/nfpm $@

deb: $(NFPM) ## dist/phoenix_<version>_<arch>.deb with nfpm (binary, unit, env file as conffile, man pages, completions, docs)
	rm -rf dist/root
	$(MAKE) install DESTDIR=$(CURDIR)/dist/root PREFIX=/usr
	DEB_VERSION='$(DEB_VERSION)' DEB_ARCH='$(DEB_ARCH)' $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DEB)
	@echo $(DEB)
