package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// addSchemaProbe registers two raw tools on s: "strict_probe" (inputSchema requires an
// integer n, declares nothing else) answering its arguments, and "output_probe" whose
// outputSchema requires an integer x but which returns a string.
func addSchemaProbe(t *testing.T, s *Server) {
	t.Helper()
	in := &Tool{Name: "strict_probe", InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`)}
	if err := s.AddTool(in, ToolOptions{}, func(_ context.Context, _ *Request, args json.RawMessage) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{Text(string(args))}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	out := &Tool{Name: "output_probe", OutputSchema: json.RawMessage(`{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}`)}
	if err := s.AddTool(out, ToolOptions{}, func(context.Context, *Request, json.RawMessage) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{Text(`{"x":"str"}`)}, StructuredContent: map[string]any{"x": "str"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// schema_validator.enabled is real end to end: with it on (default, plus
// reject_unknown_fields) bad arguments are refused with -32602 and the failing path, an
// unknown field too, and output that breaks the outputSchema is an error; with it off the
// same calls reach the tools and their results come back, for every tool, even with the
// stricter keys still set.
func TestSchemaValidatorEnabledSetting(t *testing.T) {
	bad := map[string]any{"name": "strict_probe", "arguments": map[string]any{"n": "not a number"}}
	missing := map[string]any{"name": "strict_probe", "arguments": map[string]any{}}
	unknown := map[string]any{"name": "strict_probe", "arguments": map[string]any{"n": 1, "extra": true}}
	output := map[string]any{"name": "output_probe", "arguments": map[string]any{}}

	t.Run("enabled", func(t *testing.T) {
		d := startDaemon(t, func(st *Settings) {
			st.SchemaValidator.Enabled = true
			st.SchemaValidator.RejectUnknownFields = true
			st.RateLimiter.Enabled = false
		})
		addSchemaProbe(t, d.Server())
		c := dial(t, d.TCPAddr().String())
		c.initialize("2025-11-25")
		wantError(t, c.call("tools/call", bad), -32602, "/n")
		wantError(t, c.call("tools/call", missing), -32602, "n")
		wantError(t, c.call("tools/call", unknown), -32602, "/extra")
		wantError(t, c.call("tools/call", output), -32603, "outputSchema")
		// The demo's typed tools are validated too.
		wantError(t, c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": 5}}), -32602, "echo")
	})
	t.Run("disabled", func(t *testing.T) {
		d := startDaemon(t, func(st *Settings) {
			st.SchemaValidator.Enabled = false
			st.SchemaValidator.RejectUnknownFields = true // ignored while the validator is off
			st.SchemaValidator.StrictMode = true
			st.RateLimiter.Enabled = false
		})
		addSchemaProbe(t, d.Server())
		c := dial(t, d.TCPAddr().String())
		c.initialize("2025-11-25")
		for _, tc := range []struct {
			name   string
			params map[string]any
			want   string
		}{
			{"wrong type", bad, `not a number`},
			{"missing required", missing, `{}`},
			{"unknown field", unknown, `extra`},
			{"output breaks outputSchema", output, `str`},
		} {
			m := c.call("tools/call", tc.params)
			if m.Error != nil {
				t.Fatalf("%s: refused with validation off: %d %s", tc.name, m.Error.Code, m.Error.Message)
			}
			if !strings.Contains(string(m.Result), tc.want) {
				t.Fatalf("%s: result %s does not carry %q", tc.name, m.Result, tc.want)
			}
		}
	})
}

// listToolNames pages through tools/list and returns every tool name, failing on an error.
func listToolNames(t *testing.T, c *client) []string {
	t.Helper()
	var names []string
	cursor := ""
	for range 100 {
		var params any
		if cursor != "" {
			params = map[string]any{"cursor": cursor}
		}
		m := c.call("tools/list", params)
		if m.Error != nil {
			t.Fatalf("tools/list: %d %s", m.Error.Code, m.Error.Message)
		}
		var res struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(m.Result, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) == 0 && res.NextCursor != "" {
			t.Fatal("empty page with a cursor")
		}
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		if cursor = res.NextCursor; cursor == "" {
			return names
		}
	}
	t.Fatal("tools/list does not end")
	return nil
}
