# bench/bench.mk: load-test targets. The root Makefile includes it:
#
#   include bench/bench.mk
#
# and `make test` may run bench-smoke so the load generator cannot rot.
# Everything here runs on loopback and stops by itself.

.PHONY: bench-smoke bench-load bench-idle bench-idle-http bench-peers bench-100k bench-cluster

# CI: a few hundred connections for a few seconds per mode, fails on any error.
bench-smoke:
	bash bench/smoke.sh

# Throughput against a running daemon (make run in another shell): TCP and HTTP.
BENCH_FLAGS ?= --conns 100 --duration 10s --warmup 2s
bench-load: build
	./$(BIN) bench --mode pingpong $(BENCH_FLAGS) --md
	./$(BIN) bench --mode pipelined --depth 16 $(BENCH_FLAGS) --md
	./$(BIN) bench --mode pingpong --transport http --stateless $(BENCH_FLAGS) --md

# Idle cost per session at 1K/5K/10K/19K (fresh daemon per size).
bench-idle:
	bash bench/idle_scale.sh

bench-idle-http:
	bash bench/idle_scale.sh --transport http

# erlmcp against mcp-go, go-sdk, bare fasthttp and bare netpoll in one run.
bench-peers:
	bash bench/peers/run.sh

# Cluster mode's cost per request (issue 8): haproxy in front of 1 and 3 nodes, cluster mode
# on and off, and one node direct; stateless and session-era tools/call; server CPU
# µs/request from /proc, medians of interleaved rounds (BENCHMARKS.md "Cluster (issue 8)").
bench-cluster:
	bash bench/cluster.sh

# 100K sessions: needs nofile >= 200K for the server (tuning/), so not on the
# 20K-descriptor reference box. The client spreads itself over worker processes.
bench-100k:
	bash bench/idle_scale.sh --sizes 100000 --hold 30s
