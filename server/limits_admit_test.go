package server

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/erlmcp/erlmcp-go/loop"
)

// The daemon's wiring of the memory guard into loop (security.loopAdmit and the
// OverloadHandler of lineHandler): a line still arriving when the guard turns overloaded
// stops being buffered past loop.AdmitAbove and is answered -32004 with retryAfterMs; the
// connection stays open and serves again once the guard recovers.
func TestOverloadedMidLine(t *testing.T) {
	var used atomic.Int64
	lim, err := NewLimits(LimitsConfig{MemoryGuard: &limits.MemoryGuardConfig{
		LimitBytes: 100 << 20, SampleInterval: time.Hour, KeepGoLimit: true,
		Sample: func() int64 { return used.Load() },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	var scfg Config
	lim.Install(&scfg)
	s := newDemoServer(t, scfg)
	sec := &security{lim: lim}
	addr := startTCP(t, s, func(c *loop.Config) {
		c.Handler, c.Admit, c.MaxFrameBytes = sec.lineHandler(s), sec.loopAdmit(), 10<<20
	})
	c := dial(t, addr)
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	c.conn.Write([]byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 32<<10)))
	time.Sleep(50 * time.Millisecond)
	used.Store(99 << 20)
	lim.MemoryGuard().Sample()
	c.conn.Write([]byte(strings.Repeat("a", 1<<20)))
	m := c.recv()
	wantError(t, m, -32004, "overloaded")
	if d := errData(t, m); d["retryAfterMs"] == nil {
		t.Fatalf("no retryAfterMs in %v", d)
	}
	c.conn.Write([]byte(strings.Repeat("a", 1<<20))) // the rest of the dropped line: skipped
	used.Store(1 << 20)
	lim.MemoryGuard().Sample()
	c.conn.Write([]byte("\"}}}\n"))
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("connection after a dropped line: %s", m.Error.Message)
	}
	if m := c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "back"}}); m.Error != nil {
		t.Fatalf("work after recovery: %s", m.Error.Message)
	}
}
