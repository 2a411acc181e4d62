package server

import (
	"slices"
	"testing"

	"github.com/erlmcp/erlmcp-go/limits"
)

// With auth required, tools/list shows a caller only the tools its scopes let it call,
// across pages (page size 2, so hidden tools fall inside and at the end of pages), over
// the daemon's real TCP path; every listed tool is callable and every hidden one is not.
func TestToolsListFilteredByScopes(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		st.Server.PageSize = 2
		st.RateLimiter.Enabled = false
		st.Auth.Enabled = true
		st.Auth.APIKeys = []limits.APIKey{
			{SHA256: sha("alice-token"), Subject: "alice", Scopes: []string{"tools:basic"}},
			{SHA256: sha("root-token"), Subject: "root", Scopes: []string{"tools:basic", "tools:admin"}},
			{SHA256: sha("nobody-token"), Subject: "nobody", Scopes: []string{"other"}},
		}
		st.Auth.DefaultToolScopes = []string{"tools:basic"}
		st.Auth.ToolScopes = map[string][]string{"time": {"tools:admin"}, "echo": {"tools:admin"}}
	})
	addSchemaProbe(t, d.Server()) // two more tools, default scope
	session := func(token string) *client {
		c := dial(t, d.TCPAddr().String())
		p := map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "t", "version": "1"},
			"_meta":      map[string]any{MetaAuthorization: "Bearer " + token}}
		if m := c.call("initialize", p); m.Error != nil {
			t.Fatalf("initialize %s: %s", token, m.Error.Message)
		}
		return c
	}
	all := listToolNames(t, session("root-token"))
	if !slices.Contains(all, "time") || !slices.Contains(all, "echo") || len(all) < 4 {
		t.Fatalf("root sees %v", all)
	}
	alice := session("alice-token")
	seen := listToolNames(t, alice)
	if slices.Contains(seen, "time") || slices.Contains(seen, "echo") {
		t.Fatalf("alice sees admin tools: %v", seen)
	}
	if len(seen) != len(all)-2 {
		t.Fatalf("alice sees %v of %v: every tools:basic tool should be listed once", seen, all)
	}
	for _, name := range all {
		m := alice.call("tools/call", map[string]any{"name": name, "arguments": map[string]any{}})
		forbidden := m.Error != nil && m.Error.Code == -32007
		if listed := slices.Contains(seen, name); listed == forbidden {
			t.Fatalf("tool %s: listed to alice %v but call forbidden %v", name, listed, forbidden)
		}
	}
	if got := listToolNames(t, session("nobody-token")); len(got) != 0 {
		t.Fatalf("a caller without tool scopes sees %v", got)
	}
}

// The Middleware() path (no Config.ToolVisible) filters tools/list results too.
func TestToolsListFilteredByScopesMiddleware(t *testing.T) {
	lim, err := NewLimits(LimitsConfig{
		AuthRequired:      true,
		Auth:              &limits.AuthConfig{APIKeys: []limits.APIKey{{SHA256: sha("alice-token"), Subject: "alice", Scopes: []string{"tools:basic"}}}},
		DefaultToolScopes: []string{"tools:basic"},
		ToolScopes:        map[string][]string{"time": {"tools:admin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	s := newDemoServer(t, Config{Middleware: []Middleware{lim.Middleware()}})
	c := dial(t, startTCP(t, s))
	p := map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "t", "version": "1"},
		"_meta":      map[string]any{MetaAuthorization: "Bearer alice-token"}}
	if m := c.call("initialize", p); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	if got := listToolNames(t, c); slices.Contains(got, "time") || len(got) == 0 {
		t.Fatalf("alice sees %v", got)
	}
}
