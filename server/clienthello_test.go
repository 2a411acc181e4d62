package server

import (
	"strings"
	"testing"
	"time"
)

// TestClientHelloShared initializes sessions over real TCP connections: those whose
// initialize params are byte-identical share one clientInfo/capabilities copy, the others
// get their own, and every session reports what its own client sent.
func TestClientHelloShared(t *testing.T) {
	s := newDemoServer(t, Config{})
	addr := startTCP(t, s)
	initLine := func(name string, roots bool) string {
		caps := `{}`
		if roots {
			caps = `{"roots":{"listChanged":true}}`
		}
		return `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` +
			caps + `,"clientInfo":{"name":"` + name + `","version":"1.0.0"}}}`
	}
	cases := []struct {
		name  string
		line  string
		roots bool
	}{
		{"same-a", initLine("twin", true), true},
		{"same-b", initLine("twin", true), true},
		{"other-name", initLine("solo", true), true},
		{"other-caps", initLine("twin", false), false},
	}
	for _, tc := range cases {
		c := dial(t, addr)
		c.send(tc.line)
		if m := c.recv(); m.Error != nil {
			t.Fatalf("%s: initialize: %s", tc.name, m.Error.Message)
		}
	}
	// Find each connection's session by what it told.
	var twins, solo, noRoots []*Session
	deadline := time.Now().Add(5 * time.Second)
	for {
		twins, solo, noRoots = nil, nil, nil
		s.EachSession(func(ss *Session) {
			info, caps := ss.ClientInfo(), ss.ClientCapabilities()
			if info == nil || caps == nil {
				return
			}
			switch {
			case info.Name == "solo":
				solo = append(solo, ss)
			case info.Name == "twin" && caps.Roots == nil:
				noRoots = append(noRoots, ss)
			case info.Name == "twin" && caps.Roots != nil && caps.Roots.ListChanged:
				twins = append(twins, ss)
			}
		})
		if len(twins) == 2 && len(solo) == 1 && len(noRoots) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(twins) != 2 || len(solo) != 1 || len(noRoots) != 1 {
		t.Fatalf("sessions by client: twins %d, solo %d, twin without roots %d; want 2, 1, 1", len(twins), len(solo), len(noRoots))
	}
	if twins[0].ClientInfo() != twins[1].ClientInfo() || twins[0].ClientCapabilities() != twins[1].ClientCapabilities() {
		t.Error("two sessions with byte-identical initialize params keep separate copies of clientInfo/capabilities")
	}
	for _, other := range []*Session{solo[0], noRoots[0]} {
		if other.ClientInfo() == twins[0].ClientInfo() {
			t.Errorf("session of %q shares the twins' clientInfo", other.ClientInfo().Name)
		}
	}
	if v := solo[0].ClientInfo().Version; v != "1.0.0" {
		t.Errorf("solo clientInfo.version %q, want 1.0.0", v)
	}
}

// TestInternClientBounds checks the limits of the shared copies: params over
// maxHelloBytes are never shared, and the table never holds more than maxHellos.
func TestInternClientBounds(t *testing.T) {
	big := []byte(`{"clientInfo":{"name":"` + strings.Repeat("x", maxHelloBytes) + `"}}`)
	a, _ := internClient(big, Implementation{Name: "x"}, ClientCapabilities{})
	b, _ := internClient(big, Implementation{Name: "x"}, ClientCapabilities{})
	if a == b {
		t.Error("params over maxHelloBytes were shared")
	}
	for i := range maxHellos + 10 {
		raw := []byte(`{"clientInfo":{"name":"bound-` + strings.Repeat("y", i) + `"}}`)
		info, _ := internClient(raw, Implementation{Name: "bound"}, ClientCapabilities{})
		if info.Name != "bound" {
			t.Fatalf("internClient returned %q, want the decoded name", info.Name)
		}
	}
	hellos.mu.Lock()
	n := len(hellos.byJSON)
	hellos.mu.Unlock()
	if n > maxHellos {
		t.Errorf("%d shared client copies kept, bound %d", n, maxHellos)
	}
}
