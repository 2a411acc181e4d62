# erlmcp-go: two commands do everything on a fresh machine:
#   make run    serve on the embedded defaults (TCP 127.0.0.1:8080)
#   make test   vet, house rules and every test (what CI runs)
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell cat VERSION)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
MODULE := github.com/erlmcp/erlmcp-go
BIN := bin/erlmcp

.PHONY: all build run test vet lint unit flood race conformance conformance-cluster bench fuzz clean release

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/erlmcp

# Serve on the embedded defaults: no config file needed.
run: build
	./$(BIN) start

test: lint unit race conformance conformance-cluster
	@echo "make test: all checks passed"

vet:
	$(GO) vet ./...

# House rules: gofmt, vet, go.mod tidy (direct requires marked as such, go.sum complete),
# and imports that only point down (codec/loop/pool/limits never import server or cmd).
lint: vet
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^bench/peers/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@bad=$$($(GO) list -f '{{.ImportPath}}: {{join .Imports " "}}' ./codec/... ./loop/... ./pool/... ./limits/... \
	  | grep -E " $(MODULE)/(server|cmd)(/| |$$)" || true); \
	  if [ -n "$$bad" ]; then echo "lower layers import server/cmd:"; echo "$$bad"; exit 1; fi

unit:
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) flood
	bash tuning/preflight_test.sh
	bash deploy/test/deploy_test.sh
	bash deploy/test/prometheus_test.sh
	bash bench/smoke.sh

# The memory-guard flood (200 connections x 10 MiB against a 512 MiB limit, loopback,
# about 2 s): alone in its own test binary because it sets the process-wide Go memory
# limit and measures the binary's RSS.
flood:
	ERLMCP_FLOOD_TEST=1 $(GO) test -count=1 -timeout 5m -run '^TestMemoryGuardFlood$$' -v ./server/ | grep -E '^(---|ok|FAIL)|peak RSS|outcome'; exit $${PIPESTATUS[0]}

# The official MCP conformance suite against `erlmcp start --profile conformance`, both
# requirement sets, no expected-failures baseline (installs the suite and Node on first use).
conformance:
	bash .ci/conformance.sh

# The same suite through haproxy (deploy/haproxy/haproxy.cfg) in front of three nodes in
# cluster mode sharing one redis-server: the stateless era round-robin with no stickiness,
# the session era with Mcp-Session-Id stickiness (issue 8; about 20 s).
conformance-cluster:
	bash .ci/conformance-cluster.sh

race:
	$(GO) test -count=1 -race -timeout 20m ./codec/... ./loop/... ./pool/... ./limits/... ./server/...

# Go benchmarks, then the peer comparison (starts every server itself; loopback only).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./codec/ ./loop/ ./pool/ ./server/
	$(MAKE) bench-peers

include bench/bench.mk

# Fuzzing is not part of CI: run each target for FUZZTIME.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzFramer$$' -fuzztime $(FUZZTIME) ./loop/

# Release layout and versioned tarball (deploy/release.sh; deploy/README.md).
release:
	VERSION=$(VERSION) COMMIT=$(COMMIT) DATE=$(DATE) GO=$(GO) bash deploy/release.sh

clean:
	rm -rf bin _build
