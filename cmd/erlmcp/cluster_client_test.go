package main

// A small Streamable HTTP client for the cluster tests: session-era requests (JSON or SSE
// answers), standalone GET streams, and stateless 2026-07-28 requests. Every answer carries
// the node that served it (haproxy's X-Erlmcp-Backend header).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rpcMsg is one JSON-RPC message from the server.
type rpcMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// rpcAnswer is the answer to one POST.
type rpcAnswer struct {
	Status  int
	Header  http.Header
	Backend string // haproxy server name (X-Erlmcp-Backend), "" when not through haproxy
	Reply   *rpcMsg
	// Notes are the notifications and requests that came before the reply on an SSE answer.
	Notes []rpcMsg
	Body  string // the raw body, for failure messages
	Took  time.Duration
}

// mcpSession is a session-era client of one URL (a node or the load balancer).
type mcpSession struct {
	t      *testing.T
	url    string
	id     string // Mcp-Session-Id
	nextID int
	hc     *http.Client
}

// httpClient has a bounded timeout: a hung request fails the test instead of the run.
var httpClient = &http.Client{Timeout: 15 * time.Second}

// newSession initializes a session-era session (2025-11-25) at url, sends
// notifications/initialized, and returns it with the node that created it.
func newSession(t *testing.T, url string) (*mcpSession, string) {
	t.Helper()
	s := &mcpSession{t: t, url: url, hc: httpClient}
	a0 := s.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
		`"capabilities":{"roots":{}},"clientInfo":{"name":"cluster-test","version":"1.0"}}}`)
	if a0.Status != 200 || a0.Reply == nil || a0.Reply.Error != nil {
		t.Fatalf("initialize at %s: status %d: %s", url, a0.Status, a0.Body)
	}
	s.id = a0.Header.Get("Mcp-Session-Id")
	if s.id == "" {
		t.Fatalf("initialize at %s: no Mcp-Session-Id header", url)
	}
	if a := s.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); a.Status != 202 {
		t.Fatalf("notifications/initialized of session %s (created by %q) answered by %q: status %d: %s", s.id, a0.Backend, a.Backend, a.Status, a.Body)
	}
	return s, a0.Backend
}

// at returns a client of the same session at another URL (a node directly).
func (s *mcpSession) at(url string) *mcpSession {
	return &mcpSession{t: s.t, url: url, id: s.id, nextID: s.nextID + 1000, hc: s.hc}
}

// call sends a request and returns its answer; it does not judge it.
func (s *mcpSession) call(method string, params any) rpcAnswer {
	s.t.Helper()
	s.nextID++
	body := map[string]any{"jsonrpc": "2.0", "id": s.nextID, "method": method}
	if params != nil {
		body["params"] = params
	}
	b, _ := json.Marshal(body)
	return s.post(string(b))
}

// mustCall is call that fails the test unless the answer is a JSON-RPC result.
func (s *mcpSession) mustCall(method string, params any) rpcAnswer {
	s.t.Helper()
	a := s.call(method, params)
	if a.Status != 200 || a.Reply == nil || a.Reply.Error != nil || a.Reply.Result == nil {
		s.t.Fatalf("%s on session %s via %s (node %q): status %d: %s", method, s.id, s.url, a.Backend, a.Status, a.Body)
	}
	return a
}

// notify sends a notification and returns the HTTP status.
func (s *mcpSession) notify(method string, params any) int {
	s.t.Helper()
	body := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		body["params"] = params
	}
	b, _ := json.Marshal(body)
	return s.post(string(b)).Status
}

func (s *mcpSession) post(body string) rpcAnswer {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	return doPost(s.t, s.hc, req)
}

// doPost sends req and reads a JSON or SSE answer up to the reply.
func doPost(t *testing.T, hc *http.Client, req *http.Request) rpcAnswer {
	t.Helper()
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	a := rpcAnswer{Status: resp.StatusCode, Header: resp.Header, Backend: resp.Header.Get("X-Erlmcp-Backend")}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var raw strings.Builder
		readSSE(resp.Body, func(data string) bool {
			raw.WriteString(data + "\n")
			var m rpcMsg
			if json.Unmarshal([]byte(data), &m) != nil {
				return true
			}
			if m.Method == "" && m.ID != nil {
				a.Reply = &m
				return false
			}
			a.Notes = append(a.Notes, m)
			return true
		})
		a.Body = raw.String()
	} else {
		b, _ := io.ReadAll(resp.Body)
		a.Body = string(b)
		var m rpcMsg
		if len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(b, &m) == nil {
			a.Reply = &m
		}
	}
	a.Took = time.Since(start)
	return a
}

// readSSE calls fn with the data of each event until fn returns false or the stream ends.
func readSSE(r io.Reader, fn func(data string) bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				ev := strings.Join(data, "\n")
				data = data[:0]
				if !fn(ev) {
					return
				}
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// sseStream is an open standalone GET stream of a session.
type sseStream struct {
	Backend string
	resp    *http.Response
	mu      sync.Mutex
	msgs    []rpcMsg
	ended   chan struct{}
}

// openStream opens the session's GET stream and fails the test unless it is a 200 SSE.
func (s *mcpSession) openStream() *sseStream {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", s.id)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	hc := &http.Client{} // no timeout: the stream lives until Close
	resp, err := hc.Do(req)
	if err != nil {
		s.t.Fatalf("GET stream of %s: %v", s.id, err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.t.Fatalf("GET stream of %s via %s: status %d %s: %s", s.id, s.url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	st := &sseStream{Backend: resp.Header.Get("X-Erlmcp-Backend"), resp: resp, ended: make(chan struct{})}
	go func() {
		defer close(st.ended)
		readSSE(resp.Body, func(data string) bool {
			var m rpcMsg
			if json.Unmarshal([]byte(data), &m) == nil {
				st.mu.Lock()
				st.msgs = append(st.msgs, m)
				st.mu.Unlock()
			}
			return true
		})
	}()
	s.t.Cleanup(st.Close)
	return st
}

// Close ends the stream.
func (st *sseStream) Close() { st.resp.Body.Close(); <-st.ended }

// count returns how many messages with method (and, if uri is not "", params.uri) arrived.
func (st *sseStream) count(method, uri string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, m := range st.msgs {
		if m.Method != method {
			continue
		}
		if uri != "" {
			var p struct{ URI string }
			json.Unmarshal(m.Params, &p)
			if p.URI != uri {
				continue
			}
		}
		n++
	}
	return n
}

// waitCount waits up to timeout for count(method, uri) to reach n and returns the count.
func (st *sseStream) waitCount(method, uri string, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		c := st.count(method, uri)
		if c >= n || time.Now().After(deadline) {
			return c
		}
		select {
		case <-st.ended:
			return st.count(method, uri)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// all returns a copy of the messages so far, for failure messages.
func (st *sseStream) all() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	for _, m := range st.msgs {
		fmt.Fprintf(&b, "%s %s\n", m.Method, m.Params)
	}
	return b.String()
}

// statelessCall sends one 2026-07-28 request (no session) to url.
func statelessCall(t *testing.T, url, method, name string, params map[string]any) rpcAnswer {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "cluster-test", "version": "1.0"},
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if name != "" {
		req.Header.Set("Mcp-Name", name)
	}
	return doPost(t, httpClient, req)
}

// toolText returns the text of the first content item of a tools/call result.
func toolText(a rpcAnswer) string {
	if a.Reply == nil {
		return ""
	}
	var r struct {
		Content []struct{ Text string }
		IsError bool
	}
	json.Unmarshal(a.Reply.Result, &r)
	if len(r.Content) == 0 {
		return ""
	}
	return r.Content[0].Text
}

// getJSON fetches url and decodes a JSON body into v; it returns the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// metricValue scrapes one sample (name with labels exactly as exposed, e.g.
// `erlmcp_cluster_redis_up`) from a Prometheus text endpoint; ok is false when absent.
func metricValue(t *testing.T, url, name string) (float64, bool) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}
