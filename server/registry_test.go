package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestToolsListAndCall(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	list := result[ListToolsResult](t, c.call("tools/list", nil))
	names := []string{}
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
		var sch map[string]any
		if err := json.Unmarshal(tl.InputSchema, &sch); err != nil || sch["type"] != "object" {
			t.Fatalf("tool %s inputSchema = %s", tl.Name, tl.InputSchema)
		}
	}
	if got := strings.Join(names, ","); got != "add,echo,sleep,time,write_note" {
		t.Fatalf("tools = %s", got)
	}

	echo := result[CallToolResult](t, c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "héllo\n\"quoted\""}}))
	if len(echo.Content) != 1 {
		t.Fatalf("echo content = %+v", echo.Content)
	}
	m := c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "x"}})
	if !strings.Contains(string(m.Result), `"content":[{"type":"text","text":"x"}]`) {
		t.Fatalf("echo result = %s", m.Result)
	}

	add := c.call("tools/call", map[string]any{"name": "add", "arguments": map[string]any{"a": 2, "b": 40.5}})
	var addRes struct {
		Content           []map[string]any `json:"content"`
		StructuredContent map[string]any   `json:"structuredContent"`
	}
	json.Unmarshal(add.Result, &addRes)
	if addRes.StructuredContent["sum"] != 42.5 || addRes.Content[0]["text"] != `{"sum":42.5}` {
		t.Fatalf("add result = %s", add.Result)
	}
}

func TestToolsCallErrors(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	tests := []struct {
		name   string
		params any
		code   int
		sub    string
	}{
		{"unknown tool", map[string]any{"name": "nope"}, -32602, `unknown tool "nope"`},
		{"missing name", map[string]any{}, -32602, "missing tool name"},
		{"missing required arg", map[string]any{"name": "add", "arguments": map[string]any{"a": 1}}, -32602, "b"},
		{"wrong arg type", map[string]any{"name": "echo", "arguments": map[string]any{"text": 5}}, -32602, "text"},
		{"arguments not object", map[string]any{"name": "echo", "arguments": []int{1}}, -32602, "invalid"},
		{"params not object", []int{1, 2}, -32602, "tools/call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, c.call("tools/call", tt.params), tt.code, tt.sub)
		})
	}
}

func TestToolIsErrorResult(t *testing.T) {
	s := New(Config{})
	s.AddTool(&Tool{Name: "fails"}, ToolOptions{}, func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
		return &CallToolResult{IsError: true, Content: []Content{Text("disk on fire")}}, nil
	})
	c := dial(t, startTCP(t, s))
	res := result[map[string]any](t, c.call("tools/call", map[string]any{"name": "fails"}))
	if res["isError"] != true {
		t.Fatalf("isError missing: %v", res)
	}
}

func TestContentKinds(t *testing.T) {
	s := New(Config{})
	size := int64(12)
	s.AddTool(&Tool{Name: "all"}, ToolOptions{Inline: true}, func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{
			Text("t"),
			Image("aW1n", "image/png"),
			Audio("YXVk", "audio/wav"),
			Embedded(&ResourceContents{URI: "test://r", MimeType: "text/plain", Text: "embedded"}),
			&ResourceLink{Type: "resource_link", URI: "test://l", Name: "l", Size: &size},
		}}, nil
	})
	c := dial(t, startTCP(t, s))
	var res struct {
		Content []map[string]any `json:"content"`
	}
	res = result[struct {
		Content []map[string]any `json:"content"`
	}](t, c.call("tools/call", map[string]any{"name": "all"}))
	want := []string{"text", "image", "audio", "resource", "resource_link"}
	for i, w := range want {
		if res.Content[i]["type"] != w {
			t.Fatalf("content[%d].type = %v, want %s", i, res.Content[i]["type"], w)
		}
	}
	if res.Content[1]["mimeType"] != "image/png" || res.Content[3]["resource"].(map[string]any)["text"] != "embedded" || res.Content[4]["size"] != float64(12) {
		t.Fatalf("content = %+v", res.Content)
	}
}

func TestPagination(t *testing.T) {
	s := New(Config{PageSize: 3})
	for i := range 10 {
		s.AddTool(&Tool{Name: fmt.Sprintf("t%02d", i)}, ToolOptions{}, func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
			return nil, nil
		})
	}
	c := dial(t, startTCP(t, s))
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		p := map[string]any{}
		if cursor != "" {
			p["cursor"] = cursor
		}
		res := result[ListToolsResult](t, c.call("tools/list", p))
		for _, tl := range res.Tools {
			all = append(all, tl.Name)
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	if len(all) != 10 || all[0] != "t00" || all[9] != "t09" {
		t.Fatalf("paged tools = %v", all)
	}
	wantError(t, c.call("tools/list", map[string]any{"cursor": "garbage!!"}), -32602, "invalid cursor")
}

func TestListChangedNotification(t *testing.T) {
	s := newDemoServer(t, Config{})
	c := dial(t, startTCP(t, s))
	c.initialize("2025-11-25")
	c.call("ping", nil) // the session is initialized server-side once this answers
	s.AddTool(&Tool{Name: "late"}, ToolOptions{}, func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
		return nil, nil
	})
	m := c.recv()
	if m.Method != NotificationToolListChanged {
		t.Fatalf("want tools/list_changed, got %+v", m)
	}
	s.RemoveTools("late")
	if m := c.recv(); m.Method != NotificationToolListChanged {
		t.Fatalf("want tools/list_changed after removal, got %+v", m)
	}
}

func TestResources(t *testing.T) {
	s := newDemoServer(t, Config{})
	c := dial(t, startTCP(t, s))
	c.initialize("2025-11-25")
	list := result[ListResourcesResult](t, c.call("resources/list", nil))
	if len(list.Resources) != 2 || list.Resources[0].URI != DemoNoteURI || list.Resources[1].URI != "erlmcp://demo/readme" {
		t.Fatalf("resources = %+v", list.Resources)
	}
	read := result[ReadResourceResult](t, c.call("resources/read", map[string]any{"uri": "erlmcp://demo/readme"}))
	if read.Contents[0].Text != DemoReadme || read.Contents[0].MimeType != "text/plain" {
		t.Fatalf("read = %+v", read.Contents[0])
	}
	tmpls := result[ListResourceTemplatesResult](t, c.call("resources/templates/list", nil))
	if len(tmpls.ResourceTemplates) != 1 || tmpls.ResourceTemplates[0].URITemplate != "erlmcp://demo/greeting/{name}" {
		t.Fatalf("templates = %+v", tmpls.ResourceTemplates)
	}
	greet := result[ReadResourceResult](t, c.call("resources/read", map[string]any{"uri": "erlmcp://demo/greeting/Ada"}))
	if greet.Contents[0].Text != "Hello, Ada!" || greet.Contents[0].URI != "erlmcp://demo/greeting/Ada" {
		t.Fatalf("template read = %+v", greet.Contents[0])
	}
	wantError(t, c.call("resources/read", map[string]any{"uri": "erlmcp://nope"}), -32002, "resource not found")
	wantError(t, c.call("resources/read", map[string]any{}), -32602, "missing params.uri")
}

func TestResourceSubscriptions(t *testing.T) {
	s := newDemoServer(t, Config{})
	addr := startTCP(t, s)
	sub, other := dial(t, addr), dial(t, addr)
	sub.initialize("2025-11-25")
	other.initialize("2025-11-25")
	if m := sub.call("resources/subscribe", map[string]any{"uri": "erlmcp://demo/readme"}); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	s.ResourceUpdated("erlmcp://demo/readme")
	m := sub.recv()
	if m.Method != NotificationResourceUpdated || !strings.Contains(string(m.Params), `"uri":"erlmcp://demo/readme"`) {
		t.Fatalf("want resources/updated, got %+v", m)
	}
	if _, err := other.tryRecv(200e6); err == nil {
		t.Fatal("a session that did not subscribe got a notification")
	}
	sub.call("resources/unsubscribe", map[string]any{"uri": "erlmcp://demo/readme"})
	s.ResourceUpdated("erlmcp://demo/readme")
	if m := sub.call("ping", nil); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	if len(sub.notes) != 0 {
		t.Fatalf("notification after unsubscribe: %+v", sub.notes)
	}
	if got := s.Stats().Subscriptions; got != 0 {
		t.Fatalf("subscriptions after unsubscribe = %d", got)
	}
}

func TestPrompts(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	list := result[ListPromptsResult](t, c.call("prompts/list", nil))
	if len(list.Prompts) != 1 || list.Prompts[0].Name != "greet" || len(list.Prompts[0].Arguments) != 2 {
		t.Fatalf("prompts = %+v", list.Prompts)
	}
	m := c.call("prompts/get", map[string]any{"name": "greet", "arguments": map[string]string{"name": "Ada", "style": "pirate"}})
	if !strings.Contains(string(m.Result), `"text":"Please greet Ada in a pirate style."`) || !strings.Contains(string(m.Result), `"role":"user"`) {
		t.Fatalf("prompts/get = %s", m.Result)
	}
	wantError(t, c.call("prompts/get", map[string]any{"name": "greet"}), -32602, "missing required arguments: name")
	wantError(t, c.call("prompts/get", map[string]any{"name": "nope"}), -32602, "unknown prompt")
}

func TestCompletion(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	res := result[CompleteResult](t, c.call("completion/complete", map[string]any{
		"ref": map[string]any{"type": "ref/prompt", "name": "greet"}, "argument": map[string]any{"name": "style", "value": "p"},
	}))
	if fmt.Sprint(res.Completion.Values) != "[pirate]" {
		t.Fatalf("completion = %+v", res.Completion)
	}
	wantError(t, c.call("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/other"}, "argument": map[string]any{"name": "x"}}), -32602, "ref.type")
	wantError(t, c.call("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "nope"}, "argument": map[string]any{"name": "x"}}), -32602, "unknown prompt")
}
