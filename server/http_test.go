package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/loop"
)

// startHTTP serves s on a loopback port through the real sniffing listener, with HTTP
// connections handed to fasthttp, and returns the /mcp URL and the HTTP side.
func startHTTP(t testing.TB, s *Server, cfg HTTPConfig) (string, *HTTP) {
	t.Helper()
	h := s.NewHTTP(cfg)
	addr := startTCP(t, s, func(c *loop.Config) { c.HTTP = h.ServeConn })
	t.Cleanup(h.Close)
	return "http://" + addr + "/mcp", h
}

type httpClient struct {
	t       testing.TB
	url     string
	c       *http.Client
	session string
}

func newHTTPClient(t testing.TB, url string) *httpClient {
	return &httpClient{t: t, url: url, c: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
}

func (hc *httpClient) post(body string, hdr map[string]string) *http.Response {
	hc.t.Helper()
	req, _ := http.NewRequest("POST", hc.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if hc.session != "" {
		req.Header.Set("Mcp-Session-Id", hc.session)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.c.Do(req)
	if err != nil {
		hc.t.Fatalf("POST: %v", err)
	}
	return resp
}

func (hc *httpClient) initialize() {
	hc.t.Helper()
	resp := hc.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	hc.session = resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || hc.session == "" {
		hc.t.Fatalf("initialize: status %d, session %q", resp.StatusCode, hc.session)
	}
	resp = hc.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		hc.t.Fatalf("notifications/initialized: status %d, want 202", resp.StatusCode)
	}
}

// sseEvents reads SSE events (id, data) from r until it ends or n events were read.
func sseEvents(r io.Reader, n int) (ids, datas []string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "":
			if data != "" {
				ids, datas = append(ids, id), append(datas, data)
				if len(datas) == n {
					return
				}
			}
			id, data = "", ""
		}
	}
	return
}

func testServer(t testing.TB) *Server {
	s := New(Config{})
	if err := RegisterConformance(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHTTPOriginRefused(t *testing.T) {
	url, _ := startHTTP(t, testServer(t), HTTPConfig{DNSRebindingProtection: true})
	hc := newHTTPClient(t, url)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	for _, tc := range []struct {
		origin, host string
		want         int
	}{
		{"http://evil.example.com", "", 403},
		{"", "evil.example.com", 403},
		{"http://localhost:1234", "", 200},
		{"http://127.0.0.1", "", 200},
	} {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := hc.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("origin %q host %q: status %d, want %d", tc.origin, tc.host, resp.StatusCode, tc.want)
		}
	}
}

func TestHTTPBodyTooLarge(t *testing.T) {
	url, _ := startHTTP(t, testServer(t), HTTPConfig{MaxBody: 1024})
	hc := newHTTPClient(t, url)
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 4096) + `"}}`
	resp := hc.post(big, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	var m struct {
		Error struct {
			Code int `json:"code"`
			Data struct {
				Limit int `json:"limit"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Error.Code != -32005 || m.Error.Data.Limit != 1024 {
		t.Fatalf("body %s: want a JSON-RPC error -32005 with data.limit 1024 (err %v)", b, err)
	}
}

func TestHTTPContentTypeAndAccept(t *testing.T) {
	url, _ := startHTTP(t, testServer(t), HTTPConfig{})
	hc := newHTTPClient(t, url)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`
	for _, tc := range []struct {
		ct, accept string
		want       int
	}{
		{"text/plain", "application/json, text/event-stream", 415},
		{"application/json", "text/html", 406},
		{"application/json; charset=utf-8", "application/json, text/event-stream", 200},
	} {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", tc.ct)
		req.Header.Set("Accept", tc.accept)
		resp, err := hc.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Content-Type %q Accept %q: status %d, want %d", tc.ct, tc.accept, resp.StatusCode, tc.want)
		}
	}
	// Missing and unknown sessions.
	resp := hc.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"MCP-Protocol-Version": "2025-11-25"})
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("no session: status %d, want 400", resp.StatusCode)
	}
	resp = hc.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": "nope"})
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown session: status %d, want 404", resp.StatusCode)
	}
}

// TestHTTPResume drops the SSE stream of a running call (CloseSSEStream) and checks that
// a GET with Last-Event-ID delivers exactly the events that came after it.
func TestHTTPResume(t *testing.T) {
	s := New(Config{})
	release := make(chan struct{})
	s.AddTool(&Tool{Name: "slow", Description: "d"}, ToolOptions{}, func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
		r.Progress(1, 3, "one")
		r.CloseSSEStream(time.Millisecond)
		<-release
		r.Progress(2, 3, "two")
		r.Progress(3, 3, "three")
		return textResult("done"), nil
	})
	url, _ := startHTTP(t, s, HTTPConfig{})
	hc := newHTTPClient(t, url)
	hc.initialize()
	resp := hc.post(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":"p"}}}`, nil)
	ids, datas := sseEvents(resp.Body, -1) // the server closes the response
	resp.Body.Close()
	if len(datas) != 1 || !strings.Contains(datas[0], `"progress":1`) {
		t.Fatalf("first stream: %q, want only progress 1", datas)
	}
	last := ids[len(ids)-1]
	close(release)
	time.Sleep(50 * time.Millisecond) // the rest happens while no one listens

	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", hc.session)
	req.Header.Set("Last-Event-ID", last)
	g, err := hc.c.Do(req)
	if err != nil || g.StatusCode != 200 {
		t.Fatalf("GET resume: %v %v", err, g)
	}
	_, datas = sseEvents(g.Body, -1)
	g.Body.Close()
	if len(datas) != 3 || !strings.Contains(datas[0], `"progress":2`) || !strings.Contains(datas[1], `"progress":3`) || !strings.Contains(datas[2], `"id":7`) {
		t.Fatalf("resumed stream: %q, want progress 2, progress 3, the result", datas)
	}
}

// TestHTTPSessionExpiry abandons sessions (some with a call in flight) and checks that
// the reaper ends them and that sessions and goroutines return to the baseline.
func TestHTTPSessionExpiry(t *testing.T) {
	s := testServer(t)
	url, h := startHTTP(t, s, HTTPConfig{SessionIdleTimeout: 200 * time.Millisecond})
	base := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		hc := newHTTPClient(t, url)
		hc.initialize()
		resp := hc.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text"}}`, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		hc.c.CloseIdleConnections()
	}
	if n := h.Stats().Sessions; n != 50 {
		t.Fatalf("%d sessions, want 50", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (h.Stats().Sessions > 0 || runtime.NumGoroutine() > base+2) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := h.Stats().Sessions; n != 0 {
		t.Fatalf("%d sessions left after expiry", n)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		t.Fatalf("%d goroutines, baseline %d", n, base)
	}
	if s.Stats().Sessions != 0 {
		t.Fatalf("server still has %d sessions", s.Stats().Sessions)
	}
}

// TestHTTPConcurrentSessions runs 1,000 sessions at once, each initializing and calling
// tools, over a bounded number of connections.
func TestHTTPConcurrentSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	url, h := startHTTP(t, testServer(t), HTTPConfig{})
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			hc := &httpClient{t: t, url: url, c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
			hc.initialize()
			for j := 0; j < 3; j++ {
				resp := hc.post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"test_simple_text"}}`, j+1), nil)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(b, []byte("simple text response")) || !bytes.Contains(b, []byte(fmt.Sprintf(`"id":%d`, j+1))) {
					errs <- fmt.Errorf("session %d call %d: %d %s", i, j, resp.StatusCode, b)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := h.Stats().Sessions; n != 1000 {
		t.Fatalf("%d sessions, want 1000", n)
	}
}

// TestHTTPStateless checks the 2026-07-28 path: _meta validation, resultType, and an
// input-required round trip with a sealed requestState.
func TestHTTPStateless(t *testing.T) {
	url, h := startHTTP(t, testServer(t), HTTPConfig{})
	hc := newHTTPClient(t, url)
	hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "test_input_required_result_request_state"}
	state := inputRequiredState(t, url, "test_input_required_result_request_state")
	retry := func(state string) (int, []byte) {
		resp := hc.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_input_required_result_request_state","inputResponses":{"confirm":{"action":"accept","content":{"ok":true}}},"requestState":"`+state+`",`+askMeta+`}}`, hdr)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b
	}
	if st, b := retry(state); st != 200 || !bytes.Contains(b, []byte("state-ok")) || !bytes.Contains(b, []byte(`"resultType":"complete"`)) {
		t.Fatalf("retry: %d %s", st, b)
	}
	if st, b := retry(state + "x"); st != 400 || !bytes.Contains(b, []byte("-32602")) {
		t.Fatalf("tampered retry: %d %s", st, b)
	}
	if n := h.Stats().Sessions; n != 0 {
		t.Fatalf("stateless requests left %d sessions", n)
	}
}

// TestHTTPStatelessElicit checks that a handler written for the session era (calling
// r.Elicit twice) works statelessly: each call becomes an input-required round and the
// retries re-run it with the answers gathered so far.
func TestHTTPStatelessElicit(t *testing.T) {
	s := New(Config{})
	s.AddTool(&Tool{Name: "two", Description: "asks twice"}, ToolOptions{}, func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
		a, err := r.Elicit(ctx, &ElicitParams{Message: "first?"})
		if err != nil {
			return nil, fmt.Errorf("first: %w", err)
		}
		b, err := r.Elicit(ctx, &ElicitParams{Message: "second?"})
		if err != nil {
			return nil, err
		}
		return textResult(fmt.Sprint(a.Content["v"], "+", b.Content["v"])), nil
	})
	url, _ := startHTTP(t, s, HTTPConfig{})
	hc := newHTTPClient(t, url)
	hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "two"}
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}`
	type round struct {
		Result struct {
			ResultType    string                     `json:"resultType"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
			RequestState  string                     `json:"requestState"`
			Content       []struct{ Text string }    `json:"content"`
		} `json:"result"`
	}
	call := func(extra string) round {
		resp := hc.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"two",`+extra+meta+`}}`, hdr)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r round
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return r
	}
	r1 := call("")
	if r1.Result.ResultType != "input_required" || r1.Result.InputRequests["elicitation/create#1"] == nil {
		t.Fatalf("round 1: %+v", r1)
	}
	r2 := call(`"inputResponses":{"elicitation/create#1":{"action":"accept","content":{"v":"a"}}},`)
	if r2.Result.ResultType != "input_required" || r2.Result.InputRequests["elicitation/create#2"] == nil || r2.Result.RequestState == "" {
		t.Fatalf("round 2: %+v", r2)
	}
	r3 := call(`"inputResponses":{"elicitation/create#2":{"action":"accept","content":{"v":"b"}}},"requestState":"` + r2.Result.RequestState + `",`)
	if r3.Result.ResultType != "complete" || len(r3.Result.Content) != 1 || r3.Result.Content[0].Text != "a+b" {
		t.Fatalf("round 3: %+v", r3)
	}
}

// TestHTTPStreamsLeaveNoGoroutines makes many SSE responses in one live session and
// checks that none leaves a goroutine behind.
func TestHTTPStreamsLeaveNoGoroutines(t *testing.T) {
	url, _ := startHTTP(t, testServer(t), HTTPConfig{})
	hc := newHTTPClient(t, url)
	hc.initialize()
	call := func() {
		resp := hc.post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"test_tool_with_progress","_meta":{"progressToken":"p"}}}`, nil)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q, want an SSE response", ct)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	call()
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		call()
	}
	time.Sleep(100 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base+3 {
		t.Fatalf("%d goroutines after 20 SSE responses, %d before", n, base)
	}
}
