// Package bench is erlmcp's MCP load generator: it opens many connections to
// any MCP server, over newline-delimited JSON-RPC on raw TCP or over
// Streamable HTTP (session era with Mcp-Session-Id, or the stateless
// 2026-07-28 era with per-request _meta), drives them in one of four modes and
// reports throughput, latency percentiles and errors by kind.
//
// Modes:
//
//	idle       open N sessions, initialize each, hold them, report the server's
//	           RSS and goroutines (from /metrics or /proc/PID) per session
//	pingpong   each connection keeps one request in flight (closed loop)
//	pipelined  each connection keeps --depth requests in flight
//	mixed      like pipelined, choosing tools/call, ping and tools/list by weight
//
// Example:
//
//	erlmcp bench --mode pingpong --transport tcp --addr 127.0.0.1:8080 --conns 100 --duration 10s
//	erlmcp bench --mode pipelined --depth 16 --transport http --url http://127.0.0.1:8080/mcp --stateless
//	erlmcp bench --mode idle --conns 19000 --procs 2 --pid $(pidof erlmcp) --duration 10s
//
// Each connection is one goroutine that writes its requests and reads their
// replies itself (no channel handoff), so the client spends little CPU per
// request; latency is measured from the intended send time, so the open-loop
// mode (--rate) does not hide queueing (coordinated omission). Latencies go to
// a log-linear histogram (1.6% precision) shared by a few shards with atomic
// counters, which is mergeable across worker processes (--procs).
//
// Every run is bounded by --duration and --requests and stops by itself;
// targets must be loopback addresses unless --allow-remote is given.
package bench
