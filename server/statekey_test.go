package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The "ask" tool of the requestState tests: it asks for a name (input-required, state
// "asked") and greets it on the retry.
func addAskTool(s *Server) {
	s.AddTool(&Tool{Name: "ask"}, ToolOptions{}, func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
		if r.RequestState() == "asked" {
			var er ElicitResult
			r.InputResponse("name", &er)
			return textResult(fmt.Sprint("hello ", er.Content["name"])), nil
		}
		return nil, &InputRequired{Requests: map[string]InputRequest{"name": elicitInput("Name?", `{"type":"object"}`)}, State: "asked"}
	})
}

const askMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}`

var askHeaders = map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "ask"}

// askFirst calls ask statelessly at url and returns the requestState of its input-required
// result.
func askFirst(t *testing.T, url string) string {
	t.Helper()
	return inputRequiredState(t, url, "ask")
}

// inputRequiredState calls tool statelessly at url (with askMeta: the elicitation
// capability) and returns the requestState of its input-required result.
func inputRequiredState(t *testing.T, url, tool string) string {
	t.Helper()
	hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
	resp := newHTTPClient(t, url).post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`",`+askMeta+`}}`, hdr)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ir struct {
		Result struct {
			ResultType   string `json:"resultType"`
			RequestState string `json:"requestState"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &ir) != nil || ir.Result.ResultType != "input_required" || ir.Result.RequestState == "" {
		t.Fatalf("round 1 of %s at %s: %s", tool, url, body)
	}
	return ir.Result.RequestState
}

// askRetry sends the retry answering the name with state at url: status and body.
func askRetry(t *testing.T, url, state string) (int, string) {
	t.Helper()
	resp := newHTTPClient(t, url).post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ask","inputResponses":{"name":{"action":"accept","content":{"name":"Ada"}}},"requestState":"`+state+`",`+askMeta+`}}`, askHeaders)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// askServer serves the ask tool on loopback with key as its state key.
func askServer(t *testing.T, key []byte) string {
	t.Helper()
	s := New(Config{})
	s.SetStateKey(key)
	addAskTool(s)
	url, _ := startHTTP(t, s, HTTPConfig{})
	return url
}

// TestStateKeySharedWithoutCluster: two nodes with no shared store, given the same
// SetStateKey, complete an input-required round trip that starts on one and ends on the
// other (a round-robin load balancer); with their own random keys the retry is refused.
func TestStateKeySharedWithoutCluster(t *testing.T) {
	shared := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name       string
		keyA, keyB []byte
		wantHello  bool
	}{
		{"same key", shared, shared, true},
		{"own random keys", nil, nil, false},
		{"different keys", shared, []byte("another key of 16+ bytes"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := askServer(t, tc.keyA), askServer(t, tc.keyB)
			status, body := askRetry(t, b, askFirst(t, a))
			hello := strings.Contains(body, "hello Ada")
			if hello != tc.wantHello {
				t.Fatalf("round 2 on b: greeted %v, want %v: %d %s", hello, tc.wantHello, status, body)
			}
			if !tc.wantHello && !strings.Contains(strings.ToLower(body), "requeststate") {
				t.Fatalf("a refused retry should name the requestState: %s", body)
			}
		})
	}
}

// TestLoadStateKey: cluster.state_key is a secret reference, never an inline secret, and a
// short key is refused with the fix.
func TestLoadStateKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "state.key")
	if err := os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("tiny"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ERLMCP_TEST_STATE_KEY", "abcdefghijklmnopqrstuvwxyz")
	for _, tc := range []struct {
		ref, want, err string
	}{
		{"", "", ""},
		{"file:" + good, "0123456789abcdef0123", ""},
		{"env:ERLMCP_TEST_STATE_KEY", "abcdefghijklmnopqrstuvwxyz", ""},
		{"file:" + short, "", "at least 16"},
		{"inline-secret-in-config", "", "inline secret"},
		{"env:ERLMCP_TEST_UNSET_KEY", "", "not set"},
	} {
		cs := ClusterSettings{StateKey: tc.ref}
		key, err := cs.loadStateKey()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "cluster.state_key") {
				t.Errorf("%q: error %v, want one naming cluster.state_key and %q", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil || string(key) != tc.want {
			t.Errorf("%q: key %q err %v, want %q", tc.ref, key, err, tc.want)
		}
	}
}
