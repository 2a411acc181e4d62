package server

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// A handler that panics fails its own request with an internal error, over TCP (inline
// and on a worker) and HTTP, and as a task; the connection and the server carry on.
func TestHandlerPanicIsInternalError(t *testing.T) {
	s := New(Config{})
	boom := func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
		panic("tool bug")
	}
	s.AddTool(&Tool{Name: "boom-inline"}, ToolOptions{Inline: true}, boom)
	s.AddTool(&Tool{Name: "boom-worker"}, ToolOptions{}, boom)
	if err := s.AddTaskTool(TaskTool{Tool: &Tool{Name: "boom-task"}, Required: true,
		Run: func(ctx context.Context, tk *Task, _ json.RawMessage) (*CallToolResult, error) {
			var m map[string]int
			m["nil map"]++ // a runtime panic, not a panic(value)
			return nil, nil
		}}); err != nil {
		t.Fatal(err)
	}
	url, _ := startHTTP(t, s, HTTPConfig{})
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")

	c := dial(t, addr)
	for _, name := range []string{"boom-inline", "boom-worker", "boom-inline"} {
		wantError(t, c.call("tools/call", map[string]any{"name": name}), -32603, "panicked")
		result[map[string]any](t, c.call("ping", nil)) // the same connection still serves
	}

	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}`
	post := func(method, name, params string) map[string]any {
		t.Helper()
		hc := newHTTPClient(t, url)
		resp := hc.post(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":{`+params+meta+`}}`,
			map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method, "Mcp-Name": name})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s %s: %d %s", method, name, resp.StatusCode, body)
		}
		return m
	}
	got := post("tools/call", "boom-worker", `"name":"boom-worker",`)
	if e, _ := got["error"].(map[string]any); e == nil || e["code"] != -32603.0 || !strings.Contains(e["message"].(string), "panicked") {
		t.Fatalf("HTTP tools/call of a panicking tool: %v", got)
	}

	created := post("tools/call", "boom-task", `"name":"boom-task",`)
	res, _ := created["result"].(map[string]any)
	id, _ := res["taskId"].(string)
	if id == "" {
		t.Fatalf("task tools/call: %v", created)
	}
	waitFor(t, 5*time.Second, "the task of a panicking function to fail", func() bool {
		got = post("tasks/get", id, `"taskId":"`+id+`",`)
		res, _ = got["result"].(map[string]any)
		return res["status"] == TaskFailed
	})
	if b, _ := json.Marshal(res); !strings.Contains(string(b), "panicked") {
		t.Fatalf("failed task does not say its handler panicked: %s", b)
	}
	result[map[string]any](t, c.call("ping", nil)) // the server is still up
}
