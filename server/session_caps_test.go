package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// initHTTP posts a session-era initialize and returns the status, the session id issued
// and the body.
func initHTTP(t *testing.T, base string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"caps","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
}

// TestSessionCapsPerPrincipal (issue 20.4): one client cannot hold more than
// server.max_sessions_per_principal sessions, over TCP and HTTP together; the refusal is
// clear (-32003 naming the key, HTTP 429 with Retry-After), counted, issues no session,
// and a session closed makes room again.
func TestSessionCapsPerPrincipal(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		st.RateLimiter.Enabled = false
		st.Server.MaxSessionsPerPrincipal = 4
	})
	base := "http://" + d.TCPAddr().String()
	c1, c2 := dial(t, d.TCPAddr().String()), dial(t, d.TCPAddr().String())
	c1.call("ping", nil)
	c2.call("ping", nil)
	for i := range 2 {
		if code, sid, body := initHTTP(t, base); code != 200 || sid == "" {
			t.Fatalf("HTTP session %d within the cap: %d %q %s", i, code, sid, body)
		}
	}
	code, sid, body := initHTTP(t, base)
	if code != 429 || sid != "" || !strings.Contains(body, `"code":-32003`) || !strings.Contains(body, "server.max_sessions_per_principal") {
		t.Fatalf("fifth session over HTTP: %d %q %s", code, sid, body)
	}
	// Over TCP: one error line naming the cap, then the connection is closed.
	c3 := dial(t, d.TCPAddr().String())
	c3.send(`{"jsonrpc":"2.0","id":1,"method":"ping"}`) // a line connection opens its session at its first bytes
	m, err := c3.tryRecv(5 * time.Second)
	if err != nil || m.Error == nil || m.Error.Code != -32003 || !strings.Contains(m.Error.Message, "server.max_sessions_per_principal") {
		t.Fatalf("fifth session over TCP: %+v %v", m.Error, err)
	}
	if _, err := c3.tryRecv(2 * time.Second); err != io.EOF {
		t.Fatalf("the refused connection stays open: %v", err)
	}
	if got := metricValue(t, d, "erlmcp_sessions_refused_total"); got != "2" {
		t.Fatalf("erlmcp_sessions_refused_total %s, want 2", got)
	}
	// Another client (another address) is not affected.
	other := dialFrom(t, "127.0.0.2", d.TCPAddr().String())
	if m := other.call("ping", nil); m.Error != nil {
		t.Fatalf("another client refused: %s", m.Error.Message)
	}
	c1.conn.Close()
	waitFor(t, 5*time.Second, "the closed session to be given back", func() bool {
		code, sid, _ := initHTTP(t, base)
		return code == 200 && sid != ""
	})
}

// TestSessionCapTotal: server.max_sessions bounds every client together: -32004, HTTP 503.
func TestSessionCapTotal(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		st.RateLimiter.Enabled = false
		st.Server.MaxSessions = 2
	})
	dial(t, d.TCPAddr().String()).call("ping", nil)
	dialFrom(t, "127.0.0.3", d.TCPAddr().String()).call("ping", nil)
	code, sid, body := initHTTP(t, "http://"+d.TCPAddr().String())
	if code != 503 || sid != "" || !strings.Contains(body, `"code":-32004`) || !strings.Contains(body, "server.max_sessions") {
		t.Fatalf("third session: %d %q %s", code, sid, body)
	}
}

// TestRateLimitNewSessionsHTTP (issue 20.4): each new HTTP session once got a fresh quota
// (20 sessions × 100 = 2,000 of 2,000 allowed). Keyed by the client, initialize counts
// against the same quota: past it 429, and no session is issued.
func TestRateLimitNewSessionsHTTP(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		st.RateLimiter.MaxRequestsPerMinute = 6 // startDaemon's warm-up ping takes one
		st.RateLimiter.MaxBurst = 6
	})
	base := "http://" + d.TCPAddr().String()
	ok, limited := 0, 0
	for range 10 {
		code, sid, _ := initHTTP(t, base)
		switch {
		case code == 200 && sid != "":
			ok++
		case code == 429 && sid == "":
			limited++
		default:
			t.Fatalf("initialize: %d session %q", code, sid)
		}
	}
	if ok != 5 || limited != 5 {
		t.Fatalf("%d sessions made and %d refused, want 5 and 5", ok, limited)
	}
	if n := d.Server().Stats().Sessions; n != 5 {
		t.Fatalf("%d sessions held, want 5 (refused initializes must not leave one)", n)
	}
}
