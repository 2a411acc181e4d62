package server

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/erlmcp/erlmcp-go/codec"
)

// TestHandleMethodAndExtension: an extension's method and capability, added to the
// daemon's server, are served through the same door as built-in methods on TCP and on
// Streamable HTTP in both eras (admission included), and two servers never share them.
func TestHandleMethodAndExtension(t *testing.T) {
	d := startDaemon(t, func(st *Settings) { st.RateLimiter.Enabled = false; st.Server.StrictLifecycle = true })
	s := d.Server()
	err := s.HandleMethod("example/echo", func(ctx context.Context, r *Request) (any, error) {
		var p struct {
			Say string `json:"say"`
		}
		if err := json.Unmarshal(r.Params, &p); err != nil || p.Say == "" {
			return nil, codec.NewError(codec.CodeInvalidParams, "example/echo: params.say is required")
		}
		return map[string]any{"said": p.Say}, nil
	}, MethodOptions{Worker: true})
	if err != nil {
		t.Fatal(err)
	}
	s.DeclareExtension("io.example/echo", map[string]any{"version": 1})
	if err := s.HandleMethod("example/echo", func(context.Context, *Request) (any, error) { return nil, nil }, MethodOptions{}); err == nil {
		t.Fatal("a method added twice")
	}
	if err := s.HandleMethod(MethodToolsList, func(context.Context, *Request) (any, error) { return nil, nil }, MethodOptions{}); err == nil {
		t.Fatal("a built-in method replaced")
	}

	c := dial(t, d.TCPAddr().String())
	wantError(t, c.call("example/echo", map[string]any{"say": "hi"}), -32008, "before initialize") // the lifecycle applies
	init := c.initialize("2025-11-25")
	if !strings.Contains(string(init.Result), `"extensions":{"io.example/echo":{"version":1}}`) {
		t.Fatalf("initialize does not declare the extension: %s", init.Result)
	}
	if m := c.call("example/echo", map[string]any{"say": "hi"}); m.Error != nil || string(m.Result) != `{"said":"hi"}` {
		t.Fatalf("example/echo over TCP: %s %+v", m.Result, m.Error)
	}
	wantError(t, c.call("example/echo", map[string]any{}), -32602, "params.say")

	hc := newHTTPClient(t, "http://"+d.TCPAddr().String()+"/mcp")
	resp := hc.post(`{"jsonrpc":"2.0","id":1,"method":"example/echo","params":{"say":"yo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "example/echo"})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"said":"yo"`) {
		t.Fatalf("example/echo stateless over HTTP: %d %s", resp.StatusCode, b)
	}
	// Another server knows nothing of it.
	other := newDemoServer(t, Config{})
	if other.method("example/echo") != nil || other.extensionsFor(true) != nil {
		t.Fatal("an extension leaked into another server")
	}
}
