package server

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// Mcp-Param-<Name> headers mirror the tool arguments marked x-mcp-header (read from the
// input schema once, when the tool is added): they must be present when the argument is,
// and equal it, literal or =?base64?…?=.
func TestParamHeaders(t *testing.T) {
	s := New(Config{})
	schema := json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},` +
		`"zone":{"type":"string","x-mcp-header":"Zone"},"level":{"type":"integer"}}}`)
	s.AddTool(&Tool{Name: "where", InputSchema: schema}, ToolOptions{Inline: true},
		func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
			return &CallToolResult{Content: []Content{Text("ok")}}, nil
		})
	if e, _ := s.tools.get("where"); len(e.headers) != 2 || e.headers[0] != (paramHeader{"region", "Region"}) || e.headers[1] != (paramHeader{"zone", "Zone"}) {
		t.Fatalf("headers read from the schema: %+v", e.headers)
	}
	url, _ := startHTTP(t, s, HTTPConfig{})
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	for _, tc := range []struct {
		name, args string
		hdr        map[string]string
		wantErr    string // "" for success
	}{
		{"matching", `{"region":"eu","level":1}`, map[string]string{"Mcp-Param-Region": "eu"}, ""},
		{"base64", `{"region":"é","zone":"z1"}`, map[string]string{"Mcp-Param-Region": "=?base64?w6k=?=", "Mcp-Param-Zone": "z1"}, ""},
		{"argument absent, no header", `{"level":1}`, nil, ""},
		{"missing", `{"region":"eu"}`, nil, "missing Mcp-Param-Region header"},
		{"mismatch", `{"region":"eu"}`, map[string]string{"Mcp-Param-Region": "us"}, "header \\\"us\\\" does not match argument"},
		{"header without argument", `{}`, map[string]string{"Mcp-Param-Zone": "z1"}, "Mcp-Param-Zone header given but argument"},
		{"bad base64", `{"zone":"z1"}`, map[string]string{"Mcp-Param-Zone": "=?base64?***?="}, "not valid"},
	} {
		hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "where"}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		resp := newHTTPClient(t, url).post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"where","arguments":`+tc.args+`,`+meta+`}}`, hdr)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.wantErr == "" {
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"text":"ok"`) {
				t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != 400 || !strings.Contains(string(body), tc.wantErr) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.name, resp.StatusCode, body, tc.wantErr)
		}
	}
}
