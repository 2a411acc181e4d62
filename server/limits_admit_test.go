package server

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// The daemon's wiring of the memory guard into loop (security.loopAdmit and the
// OverloadHandler of lineHandler): a line still arriving when the guard turns overloaded
// stops being buffered past loop.AdmitAbove and is answered -32004 with retryAfterMs; the
// connection stays open and serves again once the guard recovers. The daemon is the real
// one and the pressure is real memory: the guard's limit is set just above what the
// process uses, then 96 MiB are allocated and held.
func TestOverloadedMidLine(t *testing.T) {
	d := startDaemon(t, func(st *Settings) { st.RateLimiter.Enabled = false })
	g := d.Limits().MemoryGuard()
	if g == nil {
		t.Fatal("the daemon's memory guard is off by default")
	}
	orig, _, _ := g.Limit()
	defer func() { g.SetLimit(orig); g.Sample() }()
	runtime.GC()
	g.Sample()
	limit := max(g.InUse()+64<<20, 64<<20) // high water (0.85) well above today's use, below use + 96 MiB
	if err := g.SetLimit(limit); err != nil {
		t.Fatal(err)
	}
	c := dial(t, d.TCPAddr().String())
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	c.conn.Write([]byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 32<<10)))
	time.Sleep(50 * time.Millisecond)
	ballast := make([]byte, 96<<20)
	for i := range ballast {
		ballast[i] = 1 // touched: counted as in use
	}
	if g.Sample().String() != "overloaded" {
		t.Fatalf("guard %v with %d MiB in use, limit %d MiB", g.State(), g.InUse()>>20, limit>>20)
	}
	c.conn.Write([]byte(strings.Repeat("a", 1<<20)))
	m := c.recv()
	wantError(t, m, -32004, "overloaded")
	if dd := errData(t, m); dd["retryAfterMs"] == nil {
		t.Fatalf("no retryAfterMs in %v", dd)
	}
	c.conn.Write([]byte(strings.Repeat("a", 1<<20))) // the rest of the dropped line: skipped
	runtime.KeepAlive(ballast)
	ballast = nil
	runtime.GC()
	debug.FreeOSMemory()
	if g.Sample().String() != "normal" {
		t.Fatalf("guard %v with %d MiB in use after freeing the ballast", g.State(), g.InUse()>>20)
	}
	c.conn.Write([]byte("\"}}}\n"))
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("connection after a dropped line: %s", m.Error.Message)
	}
	if m := c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "back"}}); m.Error != nil {
		t.Fatalf("work after recovery: %s", m.Error.Message)
	}
}
