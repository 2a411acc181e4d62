package server

import (
	"net"
	"strings"
	"testing"
	"time"
)

// Every bad input gets a clear JSON-RPC error on its own connection, the connection keeps
// working, and a healthy client on another connection is unaffected. Through the daemon,
// with message_size.max_request_size at 64 KiB.
func TestBadInputCatalog(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		st.MessageSize.MaxRequestSize = 64 << 10
		st.RateLimiter.Enabled = false
	})
	addr := d.TCPAddr().String()
	healthy := dial(t, addr)
	healthy.initialize("2025-11-25")

	tests := []struct {
		name   string
		line   string
		code   int
		sub    string
		wantID string
	}{
		{"seed malformed JSON", `{"jsonrpc":"2.0":"method":"tools/list","params":{},"id":2}`, -32700, "", "null"},
		{"truncated JSON", `{"jsonrpc":"2.0","id":1,"method":"ping"`, -32700, "", "null"},
		{"wrong jsonrpc version", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, -32600, "jsonrpc", "1"},
		{"missing jsonrpc", `{"id":1,"method":"ping"}`, -32600, "jsonrpc", "1"},
		{"id is object", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, -32600, "id", "null"},
		{"id is bool", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, -32600, "id", "null"},
		{"id is fraction", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, -32600, "id", "null"},
		{"request id null", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, -32600, "id", "null"},
		{"method not string", `{"jsonrpc":"2.0","id":1,"method":5}`, -32600, "method", "1"},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"tools/explode"}`, -32601, "tools/explode", "1"},
		{"invalid params", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":5}}`, -32602, "resources/read", "1"},
		{"params scalar", `{"jsonrpc":"2.0","id":1,"method":"ping","params":7}`, -32600, "params", "1"},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"\xff\xfe\"}}}", -32700, "UTF-8", "null"},
		{"deep nesting", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + `}}`, -32700, "depth", "null"},
		{"binary garbage", "\x00\x01\x02\x7f\xff{{{", -32700, "", "null"},
		{"oversized line", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 100<<10) + `"}}}`, -32005, "max_request_size", "1"}, // the id stands before the limit: recovered
		{"oversized line, id after the limit", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 100<<10) + `"}},"id":1}`, -32005, "max_request_size", "null"},
		{"empty batch", `[]`, -32600, "", "null"},
	}
	c := dial(t, addr)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(tt.line)
			m := c.recv()
			wantError(t, m, tt.code, tt.sub)
			if string(m.ID) != tt.wantID {
				t.Fatalf("error id = %s, want %s", m.ID, tt.wantID)
			}
			// Same connection still serves.
			if p := c.call("ping", nil); p.Error != nil {
				t.Fatalf("connection broken after %s: %s", tt.name, p.Error.Message)
			}
			// Other connection unaffected.
			if p := healthy.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "ok"}}); p.Error != nil {
				t.Fatalf("healthy client affected: %s", p.Error.Message)
			}
		})
	}
}

// A peer that resets the connection halfway through a frame costs nothing to others.
func TestResetMidFrame(t *testing.T) {
	addr := startTCP(t, newDemoServer(t, Config{}))
	healthy := dial(t, addr)
	for range 50 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ec`))
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	time.Sleep(50 * time.Millisecond)
	if m := healthy.call("ping", nil); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
}
