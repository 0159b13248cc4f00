SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO      ?= go
VERSION ?= v0.1.0
MODULE  := github.com/vault-plugin-openai/vault-plugin-openai
LDFLAGS := -X $(MODULE)/backend.Version=$(VERSION)
# The e2e suite starts many Vault servers; 20m is a ceiling, not an expectation.
E2E_TIMEOUT ?= 20m
# Extra flags for the e2e run, e.g. E2E_FLAGS='-timeout 30m'. A -run that leaves
# out tests makes `make test-e2e` fail (it must run them all); run a subset
# with `go test -tags e2e -run TestAudit ./e2e/` instead.
E2E_FLAGS ?=

export PLUGIN_VERSION := $(VERSION)

.PHONY: all build release test lint test-unit test-e2e test-faults test-cluster demo demo-loop dev dev-stop cluster cluster-stop vault fmt vet staticcheck clean bench bench-smoke bench-profile bench-scale bench-compare dashboard

all: build

# Always relinks; Go's build cache makes that cheap and avoids stale-binary surprises.
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/vault-plugin-openai ./cmd/vault-plugin-openai
	$(GO) build -trimpath -o bin/fake-openai ./cmd/fake-openai

# Static release binaries (CGO_ENABLED=0, -trimpath, version stamped) for linux/amd64,
# linux/arm64, darwin/arm64 and darwin/amd64 in dist/, with dist/SHA256SUMS:
# make release VERSION=v0.2.0 (scripts/release.sh; tested by e2e TestReleaseScript).
release:
	VERSION=$(VERSION) GO=$(GO) scripts/release.sh

# Sequential even under make -j: lint and unit failures should stop before Vault starts.
test:
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) test-e2e
	$(MAKE) bench-smoke

# The e2e package is behind the `e2e` build tag, so ./... here never starts Vault.
# The backend's tests run one after another and mostly wait on timers (retry
# backoffs, the model's steps): in one process they took ~4 min on 2 cores using
# under half the CPU. So three `go test` processes run at once, split by name:
# the randomized model (TestModel_, 2,000 steps, ~80 s), the retry and static-role
# tests (TestRetry_, TestStatic_, ~60 s), and every other test of every package
# (-skip the two sets). Each test runs exactly once; the status is the worst of the three.
UNIT_MODEL := ^TestModel_
UNIT_SLOW  := ^(TestRetry_|TestStatic_)
test-unit:
	pids=(); \
	$(GO) test -race -run '$(UNIT_MODEL)' ./backend/ & pids+=($$!); \
	$(GO) test -race -run '$(UNIT_SLOW)' ./backend/ & pids+=($$!); \
	rc=0; $(GO) test -race -skip '$(UNIT_MODEL)|$(UNIT_SLOW)' ./... || rc=$$?; \
	for pid in "$${pids[@]}"; do wait "$$pid" || rc=$$?; done; \
	exit "$$rc"

# -race on the test process covers the in-process fake under Vault's real concurrency;
# the harness builds the plugin with -race too and fails a test whose Vault log shows
# a data race in the plugin. Every fault scenario runs here in a short version
# (e2e/faults_test.go). The run must pass every test the package lists:
# .ci/e2e-summary.go counts them from `go test -json`, so E2E_FLAGS (say a -run
# left in the environment) cannot shrink the run and stay green. It prints what
# plain `go test` would plus the FIGURES lines; the full event log is $(E2E_LOG).
E2E_LOG ?= bin/e2e.json
# Tests run 12 at a time (the harness's default is 8): most of a test's time is
# spent waiting on Vault's timers (the one-minute rollback tick, TTLs), and at 8
# the 2 cores stayed more than half idle while tests queued for a slot. On 2
# shared cores 12 took the suite from ~6 to ~5 min; E2E_FLAGS='-parallel N' overrides.
E2E_PARALLEL ?= 12
test-e2e:
	@mkdir -p $(dir $(E2E_LOG))
	vault="$$(scripts/vault.sh)"; \
	export VAULT_BIN="$$vault" PLUGIN_VERSION=$(VERSION); \
	listed="$$($(GO) test -tags e2e -race -list '.*' ./e2e/ | grep -c '^Test' || true)"; \
	$(GO) test -tags e2e -race -count=1 -json -timeout $(E2E_TIMEOUT) -parallel $(E2E_PARALLEL) $(E2E_FLAGS) ./e2e/... \
		| tee $(E2E_LOG) | E2E_FLAGS='$(E2E_FLAGS)' $(GO) run .ci/e2e-summary.go -want "$$listed"

# Every fault scenario at full size (e2e/faults_test.go; `make test` runs short
# versions of all of them), then the randomized model of leases and accounts
# (backend/model_test.go) for 20000 steps. Some scenarios wait on Vault's
# one-minute rollback tick. On 2 shared cores: scenarios ~3 min, model ~10 min.
MODEL_STEPS ?= 20000
test-faults:
	VAULT_BIN="$$(scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) E2E_FAULTS=1 \
		$(GO) test -tags e2e -race -count=1 -timeout 30m -run '^(TestFault|TestAppPolicy)' -v $(E2E_FLAGS) ./e2e/...
	MODEL_STEPS=$(MODEL_STEPS) $(GO) test -race -count=1 -timeout 30m -run '^TestModel' -v ./backend/

# The benchmark (bench/, its own module so gonum/plot stays out of the plugin's
# dependencies): the engine driven through a real Vault dev server against the
# in-process fake, on the e2e suite's harness (e2e/harness). The plugin is built
# with its pprof listener (tag pprof) and without -race. Writes bench/results/
# (~6 min on 2 cores).
bench:
	cd bench && VAULT_BIN="$$(../scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		$(GO) test -tags bench -count=1 -timeout 20m -run '^TestBench$$' -v .

# The same benchmark with a few dozen requests per cell (20-35 s), after a check
# of the load generator itself; checks it works (report and plot included), not
# speed. Its output goes to a temporary directory.
bench-smoke:
	cd bench && VAULT_BIN="$$(../scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		$(GO) test -count=1 -timeout 5m -run '^TestBenchSmoke$$' -v .
	cd bench && $(GO) test -count=1 ./cmd/dashboard/

# CPU profiles of the plugin and Vault under issue load (BENCH_PROFILE_* in bench/full_test.go).
bench-profile:
	cd bench && VAULT_BIN="$$(../scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		$(GO) test -tags bench -count=1 -timeout 10m -run '^TestBenchProfile$$' -v .

# The README's dashboard picture, examples/grafana/dashboard.png: a 6-minute
# scenario on the real Vault and the fake, the metrics path scraped every 5 s,
# each panel of the dashboard JSON evaluated by Prometheus' PromQL engine and
# drawn on the dashboard's grid (bench/cmd/dashboard). ~7 min; the recording
# is written beside the picture (dashboard-run.prom).
dashboard:
	cd bench && VAULT_BIN="$$(../scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		DASHBOARD_OUT="$(CURDIR)/examples/grafana/dashboard.png" \
		$(GO) test -tags bench -count=1 -timeout 15m -run '^TestDashboardScenario$$' -v ./cmd/dashboard/

# An A/B benchmark of the issue path: the plugin built from BASE (a temporary git
# worktree of that ref, removed afterwards) as A against the working tree, or against
# NEW (another temporary worktree) if given, as B; built alike, mounted side by side in
# one Vault and measured in turns (ABBA), 8 repetitions of 4 s per side and cell
# (bench/compare_*_test.go). Writes bench/results/compare-<short BASE>[-<short
# NEW>].{md,json}; about 5 min on 2 cores. make bench-compare BASE=main~3, or
# BASE=0efd7e2^ NEW=0efd7e2 (BENCH_REPS, BENCH_CELL_SECONDS resize it).
bench-compare:
	@if [[ -z "$(BASE)" ]]; then echo "usage: make bench-compare BASE=<git ref> [NEW=<git ref>]" >&2; exit 2; fi
	base="$$(git rev-parse --verify --quiet '$(BASE)^{commit}')" || { echo "bench-compare: no commit $(BASE)" >&2; exit 2; }; \
	new=""; if [[ -n "$(NEW)" ]]; then new="$$(git rev-parse --verify --quiet '$(NEW)^{commit}')" || { echo "bench-compare: no commit $(NEW)" >&2; exit 2; }; fi; \
	tmp="$$(mktemp -d)"; \
	trap 'for d in base new; do [[ -d "$$tmp/$$d" ]] && git worktree remove --force "$$tmp/$$d"; done; rm -rf "$$tmp"; git worktree prune' EXIT; \
	git worktree add --detach --quiet "$$tmp/base" "$$base"; \
	if [[ -n "$$new" ]]; then git worktree add --detach --quiet "$$tmp/new" "$$new"; fi; \
	cd bench && VAULT_BIN="$$(../scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		BENCH_BASE_SRC="$$tmp/base" BENCH_BASE_REF='$(BASE)' \
		BENCH_NEW_SRC="$${new:+$$tmp/new}" BENCH_NEW_REF='$(NEW)' \
		$(GO) test -tags bench -count=1 -timeout 30m -run '^TestBenchCompare$$' -v .

# 50,000 live leases on a single Raft node, then on a 3-node HA cluster
# (scripts/cluster.sh): memory of Vault and the plugin, Raft storage, issue
# throughput with 1k vs 50k live leases (PASS/FAIL at 20%), the sweep,
# revoke-prefix of all, failover with them to restore, and the same Vault
# figures for 50,000 tokens. Writes bench/results/scale.{md,json} and
# scale-*.png. BENCH_SCALE_LEASES=2000 is a quick check of the whole path;
# BENCH_SCALE_NODES=3 runs one topology, BENCH_SCALE_TOKENS=0 skips the tokens,
# BENCH_SCALE_OUT writes elsewhere (bench/scale_test.go).
bench-scale:
	cd bench && VAULT_BIN="$$(../scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		$(GO) test -tags scale -count=1 -timeout 40m -run '^TestBenchScale$$' -v .

demo:
	scripts/demo.sh

# The demo 50 times in a row, stopping at the first failure (proves it does not flake).
demo-loop:
	scripts/demo-loop.sh 50

dev:
	scripts/dev.sh start

dev-stop:
	scripts/dev.sh stop

# A 3-node Vault HA cluster on Raft storage (scripts/cluster.sh: CLUSTER_NODES,
# CLUSTER_BASE_PORT, ... in its header), the plugin registered on every node,
# mounted and configured against the fake (or OPENAI_* as for make dev).
cluster:
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

# The HA tests (e2e/cluster, build tag cluster, outside make test): clusters started
# through scripts/cluster.sh against the in-process fake; failover under load,
# rejoin, consistency. Prints FIGURES lines (the failover timeline).
CLUSTER_TIMEOUT ?= 30m
test-cluster:
	VAULT_BIN="$$(scripts/vault.sh)" PLUGIN_VERSION=$(VERSION) \
		$(GO) test -tags cluster -race -count=1 -timeout $(CLUSTER_TIMEOUT) -v $(E2E_FLAGS) ./e2e/cluster/

# Prints the path of the Vault binary, building the pinned version on first use.
vault:
	@scripts/vault.sh

fmt:
	gofmt -l -w $$(find . -name '*.go' -not -path './.git/*')

# gofmt check (lists unformatted files and fails), go vet and staticcheck under
# every build tag the code uses. Under a minute once the caches are warm.
lint: vet staticcheck
	@files="$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*'))"; \
	if [[ -n "$$files" ]]; then echo "gofmt: not formatted (run make fmt):"; echo "$$files"; exit 1; fi

# Every build tag: e2e (the suite), pprof (the plugin's profiling listener), and in
# the bench module (bench/) bench (the full benchmark).
vet:
	$(GO) vet ./...
	$(GO) vet -tags pprof ./cmd/...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) vet -tags cluster ./e2e/...
	cd bench && $(GO) vet -tags bench ./...
	cd bench && $(GO) vet -tags scale ./...

# staticcheck is pinned in scripts/staticcheck/go.mod (like Vault in scripts/vault)
# and built into bin/; Go's build cache makes the rebuild on every run cheap.
STATICCHECK := bin/staticcheck
staticcheck:
	cd scripts/staticcheck && $(GO) build -o ../../$(STATICCHECK) honnef.co/go/tools/cmd/staticcheck
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags pprof ./cmd/...
	$(STATICCHECK) -tags e2e ./e2e/...
	$(STATICCHECK) -tags cluster ./e2e/...
	cd bench && ../$(STATICCHECK) -tags bench ./...
	cd bench && ../$(STATICCHECK) -tags scale ./...

clean:
	rm -rf bin dist
