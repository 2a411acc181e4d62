//go:build !race

package server

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHealthAllocs holds the health endpoints to their budget: the daemon's /health with
// its five built-in checks, /ready and /api/ping allocate nothing once warm (load
// balancers poll them; see BenchmarkHealth).
func TestHealthAllocs(t *testing.T) {
	d := startDaemon(t, nil)
	d.Readiness().Set(ReasonOverloaded, true) // exercise the not-ready body too
	for _, path := range []string{"/health", "/health/transport", "/ready", "/live", "/api/ping"} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.SetMethod("GET")
		h := d.Health()
		h.Handle(&ctx) // warm the pools
		if n := testing.AllocsPerRun(200, func() {
			ctx.Response.Reset()
			h.Handle(&ctx)
		}); n > 0 {
			t.Errorf("%s: %.1f allocations per request, want 0", path, n)
		}
	}
}

// TestMetricsRecordAllocs: recording a request (Observer.RequestDone) allocates nothing
// once its series exists, whatever the method name.
func TestMetricsRecordAllocs(t *testing.T) {
	m := NewMetrics("t")
	m.RequestDone("tcp", "tools/call", 0, 1000)
	m.RequestDone("http", "no/such/method", -32601, 1000)
	if n := testing.AllocsPerRun(1000, func() {
		m.RequestDone("tcp", "tools/call", 0, 1000)
		m.RequestDone("http", "random-method-name", -32601, 1000)
	}); n > 0 {
		t.Fatalf("RequestDone: %.1f allocations, want 0", n)
	}
}
