package server

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/erlmcp/erlmcp-go/codec"
	"slices"
	"sync"
	"testing"
)

func TestInitializeNegotiatesVersion(t *testing.T) {
	addr := startTCP(t, newDemoServer(t, Config{Name: "t", Version: "9.9"}))
	tests := []struct {
		asked, want string
	}{
		{"2024-11-05", "2024-11-05"},
		{"2025-03-26", "2025-03-26"},
		{"2025-06-18", "2025-06-18"},
		{"2025-11-25", "2025-11-25"},
		{"2026-07-28", LatestSessionVersion}, // stateless era has no initialize
		{"1999-01-01", LatestSessionVersion},
		{"", LatestSessionVersion},
	}
	for _, tt := range tests {
		t.Run("asked="+tt.asked, func(t *testing.T) {
			c := dial(t, addr)
			res := result[InitializeResult](t, c.initialize(tt.asked))
			if res.ProtocolVersion != tt.want {
				t.Fatalf("protocolVersion = %q, want %q", res.ProtocolVersion, tt.want)
			}
			if res.ServerInfo.Name != "t" || res.ServerInfo.Version != "9.9" {
				t.Fatalf("serverInfo = %+v", res.ServerInfo)
			}
			caps := res.Capabilities
			if caps.Tools == nil || caps.Resources == nil || !caps.Resources.Subscribe || caps.Prompts == nil || caps.Logging == nil || caps.Completions == nil {
				t.Fatalf("capabilities incomplete: %+v", caps)
			}
		})
	}
}

// The seed's one-shot line: empty params, no clientInfo, no protocolVersion.
func TestInitializeLenientEmptyParams(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.send(`{"jsonrpc":"2.0","method":"initialize","params":{},"id":1}`)
	res := result[InitializeResult](t, c.recv())
	if res.ProtocolVersion != LatestSessionVersion {
		t.Fatalf("protocolVersion = %q", res.ProtocolVersion)
	}
}

func TestInitializeTwiceRefused(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	wantError(t, c.call("initialize", map[string]any{"protocolVersion": "2025-11-25"}), -32600, "already initialized")
}

func TestPing(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	if m := c.call("ping", nil); string(m.Result) != "{}" {
		t.Fatalf("ping result = %s, want {}", m.Result)
	}
}

func TestRequestsBeforeInitialize(t *testing.T) {
	t.Run("lenient", func(t *testing.T) {
		c := dial(t, startTCP(t, newDemoServer(t, Config{})))
		res := result[ListToolsResult](t, c.call("tools/list", nil))
		if len(res.Tools) == 0 {
			t.Fatal("lenient mode: tools/list before initialize returned no tools")
		}
	})
	t.Run("strict", func(t *testing.T) {
		c := dial(t, startTCP(t, newDemoServer(t, Config{StrictLifecycle: true})))
		wantError(t, c.call("tools/list", nil), -32008, "before initialize")
		if m := c.call("ping", nil); m.Error != nil {
			t.Fatalf("ping refused before initialize in strict mode: %s", m.Error.Message)
		}
		c.initialize("2025-11-25")
		if m := c.call("tools/list", nil); m.Error != nil {
			t.Fatalf("tools/list after initialize: %s", m.Error.Message)
		}
	})
}

func TestSetLevelAndLogNotifications(t *testing.T) {
	s := newDemoServer(t, Config{})
	err := AddTool(s, &Tool{Name: "logger"}, func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, any, error) {
		r.Log(LevelDebug, "test", "debug line")
		r.Log(LevelWarning, "test", map[string]any{"msg": "warn line"})
		return &CallToolResult{Content: []Content{Text("ok")}}, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, startTCP(t, s))
	c.initialize("2025-11-25")
	// Before setLevel nothing is logged.
	c.call("tools/call", map[string]any{"name": "logger"})
	if len(c.notes) != 0 {
		t.Fatalf("notifications before setLevel: %+v", c.notes)
	}
	wantError(t, c.call("logging/setLevel", map[string]any{"level": "loud"}), -32602, "unknown logging level")
	if m := c.call("logging/setLevel", map[string]any{"level": "info"}); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	c.call("tools/call", map[string]any{"name": "logger"})
	if len(c.notes) != 1 || c.notes[0].Method != "notifications/message" {
		t.Fatalf("want one notifications/message (warning passes, debug filtered), got %+v", c.notes)
	}
	var p LoggingMessageParams
	json.Unmarshal(c.notes[0].Params, &p)
	if p.Level != LevelWarning || p.Logger != "test" {
		t.Fatalf("log params = %+v", p)
	}
}

func TestDiscover(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	res := result[DiscoverResult](t, c.call("server/discover", nil))
	for _, v := range append(append([]string{}, SessionVersions...), Version20260728) {
		if !slices.Contains(res.SupportedVersions, v) {
			t.Fatalf("supportedVersions = %v, missing %s", res.SupportedVersions, v)
		}
	}
}

// Middleware sees every request and can answer instead of the handler.
func TestMiddleware(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	deny := func(next Handler) Handler {
		return func(ctx context.Context, r *Request) (any, error) {
			mu.Lock()
			seen = append(seen, r.Method)
			mu.Unlock()
			if r.Method == MethodPromptsList {
				return nil, codec.NewError(codec.CodeForbidden, "prompts are off for %s", r.Transport)
			}
			return next(ctx, r)
		}
	}
	c := dial(t, startTCP(t, newDemoServer(t, Config{Middleware: []Middleware{deny}})))
	c.initialize("2025-11-25")
	wantError(t, c.call("prompts/list", nil), -32007, "prompts are off for tcp")
	if m := c.call("tools/list", nil); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[initialize prompts/list tools/list]" {
		t.Fatalf("middleware saw %v", seen)
	}
}
