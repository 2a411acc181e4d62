package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
)

// The admission matrix (issue 13): every transport the daemon claims × every credential
// case gives the documented answer, and nothing refused runs. It drives the real daemon
// (NewDaemon) on loopback; a tool that counts its calls proves what ran.
//
// Documented answers:
//   - no credentials, wrong token: -32006 (HTTP 401, WWW-Authenticate: Bearer
//     resource_metadata=…, error="invalid_token" for a wrong one); on HTTP before any session
//     exists (no Mcp-Session-Id issued).
//   - right token: served.
//   - a token without the tool's scope: -32007 (HTTP 403, error="insufficient_scope",
//     scope="…").
//   - another subject's token on a session: -32007 (HTTP 403).
//   - unsigned, bad signature, replayed nonce (request_signing on): -32011 (HTTP 401).
//   - before initialize (server.strict_lifecycle): -32008 on session transports, also with
//     an empty params._meta; a stateless (2026-07-28) request has no lifecycle and is served.

const (
	tokAlice = "alice-token-0123456789" // scopes: record:call
	tokBob   = "bob-token-0123456789"   // no scopes
	sigKey   = "0123456789abcdef0123456789abcdef"
)

// matrixDaemon is a daemon with the record tool and what the matrix needs to reach it.
type matrixDaemon struct {
	d     *Daemon
	pki   *testPKI
	calls atomic.Int64 // record tool runs
	stdio []io.Closer
}

func startMatrixDaemon(t *testing.T, tweak func(*Settings)) *matrixDaemon {
	t.Helper()
	md := &matrixDaemon{pki: newPKI(t)}
	st := DefaultSettings()
	st.Transports.TCP.Addr = "127.0.0.1:0"
	st.Observability.Metrics.Addr = "127.0.0.1:0"
	st.Transports.HTTP.LegacySSE = true
	st.Transports.TLS = TLSSettings{Enabled: true, Addr: "127.0.0.1:0", CertFile: md.pki.certFile, KeyFile: md.pki.keyFile,
		MinVersion: "1.3", Verify: "verify_none"}
	st.RateLimiter.Enabled = false
	st.MemoryGuard.Enabled = false
	tweak(&st)
	d, err := NewDaemon(st, BuildInfo{Version: "test"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Server().AddTool(&Tool{Name: "record", InputSchema: json.RawMessage(`{"type":"object"}`)}, ToolOptions{},
		func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
			md.calls.Add(1)
			return &CallToolResult{Content: []Content{Text("recorded")}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	md.d = d
	t.Cleanup(func() {
		for _, c := range md.stdio {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return md
}

func authSettings(st *Settings) {
	st.Server.StrictLifecycle = true
	st.Auth = AuthSettings{Enabled: true,
		APIKeys: []limits.APIKey{
			{SHA256: sha(tokAlice), Subject: "alice", Scopes: []string{"record:call"}},
			{SHA256: sha(tokBob), Subject: "bob"},
		},
		ToolScopes: map[string][]string{"record": {"record:call"}},
	}
}

func signingSettings(t *testing.T) func(st *Settings) {
	t.Setenv("ERLMCP_TEST_SIGNING_KEY", sigKey)
	return func(st *Settings) {
		st.RequestSigning = RequestSigningSettings{Enabled: true, SigningKey: "env:ERLMCP_TEST_SIGNING_KEY", SigningAlgorithm: "hmac_sha256"}
	}
}

// outcome is what a client saw for one request: the HTTP status (0 on line transports),
// the JSON-RPC error code (0 for a result) and message, and headers that matter.
type outcome struct {
	status  int
	code    int
	message string
	www     string
	session string // Mcp-Session-Id issued, if any
}

func (o outcome) String() string {
	return fmt.Sprintf("status %d code %d %q www %q", o.status, o.code, o.message, o.www)
}

// signing says how a request is signed: not at all, well, with a wrong key, or with a
// fixed nonce (the replay cases send the same nonce twice).
type signing struct {
	key   string
	nonce string
}

var nonceSeq atomic.Int64

func (s *signing) nextNonce() string {
	if s.nonce != "" {
		return s.nonce
	}
	return "nonce-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(nonceSeq.Add(1), 10)
}

// signMeta returns params with a params._meta signature of method+"\n"+params, as line
// transports carry it.
func (s *signing) signMeta(method string, meta map[string]any, rest string) string {
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), s.nextNonce()
	meta[limits.MetaSignature] = map[string]any{"timestamp": ts, "nonce": nonce, "signature": ""}
	mb, _ := json.Marshal(meta)
	params := `{"_meta":` + string(mb) + rest + `}`
	sig := limits.Sign([]byte(s.key), ts, nonce, []byte(method+"\n"+params))
	return strings.Replace(params, `"signature":""`, `"signature":"`+sig+`"`, 1)
}

// transport is one way of reaching the daemon.
type transport interface {
	name() string
	// session opens a client session: connect (GET /sse for legacy SSE) with token, then
	// initialize unless init is false. The outcome is the first refusal met, if any.
	session(t *testing.T, md *matrixDaemon, token string, init bool, sig *signing) (clientSession, outcome)
}

type clientSession interface {
	// call sends method with params (a JSON object's members after _meta, e.g.
	// `,"name":"record"`) carrying token and signed by sig (nil: unsigned).
	call(t *testing.T, method, rest, token string, sig *signing) outcome
}

// ---- line transports (TCP, TLS, stdio) ------------------------------------------------

type lineTransport struct {
	kind string // tcp, tls, stdio
}

func (lt lineTransport) name() string { return lt.kind }

type lineSession struct {
	c  *client
	id int
}

func (lt lineTransport) session(t *testing.T, md *matrixDaemon, token string, init bool, sig *signing) (clientSession, outcome) {
	var c *client
	switch lt.kind {
	case "tcp":
		c = dial(t, md.d.TCPAddr().String())
	case "tls":
		conn, err := tls.Dial("tcp", md.d.TLSAddr().String(), &tls.Config{RootCAs: md.pki.pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c = &client{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
	case "stdio":
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		md.stdio = append(md.stdio, inW)
		go func() {
			md.d.Server().ServeStdio(context.Background(), inR, outW, 1<<20)
			outW.Close()
		}()
		c = &client{t: t, conn: pipeConn{r: outR, w: inW}, r: bufio.NewReader(outR)}
	}
	ls := &lineSession{c: c}
	if !init {
		return ls, outcome{}
	}
	o := ls.call(t, "initialize", `,"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"matrix","version":"1"}`, token, sig)
	if o.code == 0 {
		c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	}
	return ls, o
}

func (ls *lineSession) call(t *testing.T, method, rest, token string, sig *signing) outcome {
	t.Helper()
	meta := map[string]any{}
	if token != "" {
		meta[MetaAuthorization] = "Bearer " + token
	}
	var params string
	if sig != nil {
		params = sig.signMeta(method, meta, rest)
	} else {
		mb, _ := json.Marshal(meta)
		params = `{"_meta":` + string(mb) + rest + `}`
	}
	ls.id++
	ls.c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, ls.id, method, params))
	return msgOutcome(ls.c.waitID(strconv.Itoa(ls.id)), 0)
}

func msgOutcome(m msg, status int) outcome {
	o := outcome{status: status}
	if m.Error != nil {
		o.code, o.message = m.Error.Code, m.Error.Message
	}
	return o
}

// pipeConn makes a pair of pipes look like a net.Conn for the line client.
type pipeConn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipeConn) Read(b []byte) (int, error)       { return p.r.Read(b) }
func (p pipeConn) Write(b []byte) (int, error)      { return p.w.Write(b) }
func (p pipeConn) Close() error                     { p.w.Close(); return p.r.Close() }
func (p pipeConn) LocalAddr() net.Addr              { return nil }
func (p pipeConn) RemoteAddr() net.Addr             { return nil }
func (p pipeConn) SetDeadline(time.Time) error      { return nil }
func (p pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p pipeConn) SetWriteDeadline(time.Time) error { return nil }

// ---- Streamable HTTP, session era --------------------------------------------------

type httpSessionTransport struct{}

func (httpSessionTransport) name() string { return "http-session" }

type httpSess struct {
	base    string
	session string
	id      int
}

func (httpSessionTransport) session(t *testing.T, md *matrixDaemon, token string, init bool, sig *signing) (clientSession, outcome) {
	hs := &httpSess{base: "http://" + md.d.TCPAddr().String()}
	if !init {
		return hs, outcome{}
	}
	o := hs.call(t, "initialize", `,"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"matrix","version":"1"}`, token, sig)
	if o.code == 0 {
		hs.session = o.session
		hs.post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, token, sig, nil)
	}
	return hs, o
}

func (hs *httpSess) call(t *testing.T, method, rest, token string, sig *signing) outcome {
	t.Helper()
	hs.id++
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{%s}}`, hs.id, method, strings.TrimPrefix(rest, ","))
	return hs.post(t, body, token, sig, nil)
}

// post sends body to /mcp with the session's headers, token and signature headers.
func (hs *httpSess) post(t *testing.T, body, token string, sig *signing, extra map[string]string) outcome {
	t.Helper()
	req, _ := http.NewRequest("POST", hs.base+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if hs.session != "" {
		req.Header.Set("Mcp-Session-Id", hs.session)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sig != nil {
		ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), sig.nextNonce()
		req.Header.Set(limits.HeaderTimestamp, ts)
		req.Header.Set(limits.HeaderNonce, nonce)
		req.Header.Set(limits.HeaderSignature, limits.Sign([]byte(sig.key), ts, nonce, []byte(body)))
	}
	return doHTTP(t, req)
}

func doHTTP(t *testing.T, req *http.Request) outcome {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o := outcome{status: resp.StatusCode, www: resp.Header.Get("WWW-Authenticate"), session: resp.Header.Get("Mcp-Session-Id")}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		_, datas := sseEvents(strings.NewReader(string(b)), -1)
		for _, d := range datas {
			var m msg
			if json.Unmarshal([]byte(d), &m) == nil && len(m.ID) > 0 && m.Method == "" {
				b = []byte(d)
			}
		}
	}
	var m msg
	if len(b) > 0 && json.Unmarshal(b, &m) == nil && m.Error != nil {
		o.code, o.message = m.Error.Code, m.Error.Message
	}
	return o
}

// ---- Streamable HTTP, stateless era (2026-07-28) -----------------------------------

type httpStatelessTransport struct{}

func (httpStatelessTransport) name() string { return "http-stateless" }

func (httpStatelessTransport) session(t *testing.T, md *matrixDaemon, token string, init bool, sig *signing) (clientSession, outcome) {
	return &statelessSess{httpSess{base: "http://" + md.d.TCPAddr().String()}}, outcome{}
}

type statelessSess struct{ httpSess }

func (ss *statelessSess) call(t *testing.T, method, rest, token string, sig *signing) outcome {
	t.Helper()
	ss.id++
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}%s}}`, ss.id, method, rest)
	hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	if method == "tools/call" {
		hdr["Mcp-Name"] = "record"
	}
	return ss.post(t, body, token, sig, hdr)
}

// ---- legacy HTTP+SSE (2024-11-05) ----------------------------------------------------

type legacyTransport struct{}

func (legacyTransport) name() string { return "legacy-sse" }

type legacySess struct {
	base     string
	endpoint string
	id       int
	mu       sync.Mutex
	replies  map[string]msg
	cond     *sync.Cond
}

func (legacyTransport) session(t *testing.T, md *matrixDaemon, token string, init bool, sig *signing) (clientSession, outcome) {
	base := "http://" + md.d.TCPAddr().String()
	req, _ := http.NewRequest("GET", base+"/sse", nil)
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		o := outcome{status: resp.StatusCode, www: resp.Header.Get("WWW-Authenticate")}
		var m msg
		if json.Unmarshal(b, &m) == nil && m.Error != nil {
			o.code, o.message = m.Error.Code, m.Error.Message
		}
		return nil, o
	}
	t.Cleanup(func() { resp.Body.Close() })
	ls := &legacySess{base: base, replies: map[string]msg{}}
	ls.cond = sync.NewCond(&ls.mu)
	sc := bufio.NewScanner(resp.Body)
	var event string
	for sc.Scan() { // the endpoint event comes first
		line := sc.Text()
		if strings.HasPrefix(line, "event: ") {
			event = line[7:]
		}
		if strings.HasPrefix(line, "data: ") && event == "endpoint" {
			ls.endpoint = line[6:]
			break
		}
	}
	go func() {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m msg
				if json.Unmarshal([]byte(d), &m) == nil && len(m.ID) > 0 {
					ls.mu.Lock()
					ls.replies[string(m.ID)] = m
					ls.cond.Broadcast()
					ls.mu.Unlock()
				}
			}
		}
		ls.mu.Lock()
		ls.endpoint = "" // the stream ended
		ls.cond.Broadcast()
		ls.mu.Unlock()
	}()
	if !init {
		return ls, outcome{}
	}
	o := ls.call(t, "initialize", `,"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"matrix","version":"1"}`, token, sig)
	return ls, o
}

func (ls *legacySess) call(t *testing.T, method, rest, token string, sig *signing) outcome {
	t.Helper()
	ls.id++
	id := strconv.Itoa(ls.id)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":{%s}}`, id, method, strings.TrimPrefix(rest, ","))
	req, _ := http.NewRequest("POST", ls.base+ls.endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sig != nil {
		ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), sig.nextNonce()
		req.Header.Set(limits.HeaderTimestamp, ts)
		req.Header.Set(limits.HeaderNonce, nonce)
		req.Header.Set(limits.HeaderSignature, limits.Sign([]byte(sig.key), ts, nonce, []byte(body)))
	}
	o := doHTTP(t, req)
	if o.status != http.StatusAccepted {
		return o // refused by the HTTP edge: no reply on the stream
	}
	// The reply travels on the stream.
	deadline := time.Now().Add(5 * time.Second)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for {
		if m, ok := ls.replies[id]; ok {
			return msgOutcome(m, o.status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("legacy SSE: no reply to %s %s on the stream", method, id)
		}
		go func() { time.Sleep(50 * time.Millisecond); ls.cond.Broadcast() }()
		ls.cond.Wait()
	}
}

// ---- the matrix ------------------------------------------------------------------

var matrixTransports = []transport{
	lineTransport{"tcp"}, lineTransport{"stdio"}, lineTransport{"tls"},
	httpSessionTransport{}, httpStatelessTransport{}, legacyTransport{},
}

const recordCall = `,"name":"record","arguments":{}`

func isHTTP(tr transport) bool {
	return strings.HasPrefix(tr.name(), "http") || tr.name() == "legacy-sse"
}

// expectRefused asserts o is a refusal with code (and on HTTP edges the status) and that
// the record tool did not run.
func (md *matrixDaemon) expectRefused(t *testing.T, o outcome, code, status int, before int64) {
	t.Helper()
	if o.code != code || (status != 0 && o.status != status) {
		t.Fatalf("got %v, want code %d status %d", o, code, status)
	}
	if n := md.calls.Load(); n != before {
		t.Fatalf("a refused request ran the tool (%d calls, want %d)", n, before)
	}
}

func TestAdmissionMatrixAuth(t *testing.T) {
	md := startMatrixDaemon(t, authSettings)
	for _, tr := range matrixTransports {
		t.Run(tr.name(), func(t *testing.T) {
			httpish := isHTTP(tr)
			t.Run("no credentials", func(t *testing.T) {
				before := md.calls.Load()
				s, o := tr.session(t, md, "", true, nil)
				switch {
				case httpish && tr.name() != "http-stateless":
					md.expectRefused(t, o, -32006, 401, before)
					if !strings.Contains(o.www, `Bearer resource_metadata="http://`) || strings.Contains(o.www, "error=") {
						t.Fatalf("WWW-Authenticate %q: want resource_metadata and no error (no credentials)", o.www)
					}
					if o.session != "" {
						t.Fatalf("a session was issued to an unauthenticated client: %q", o.session)
					}
				case tr.name() == "http-stateless":
					md.expectRefused(t, s.call(t, "tools/call", recordCall, "", nil), -32006, 401, before)
				default:
					md.expectRefused(t, o, -32006, 0, before)
					md.expectRefused(t, s.call(t, "tools/call", recordCall, "", nil), -32006, 0, before)
				}
			})
			t.Run("wrong token", func(t *testing.T) {
				before := md.calls.Load()
				s, o := tr.session(t, md, "nope", true, nil)
				switch {
				case tr.name() == "http-stateless":
					o = s.call(t, "tools/call", recordCall, "nope", nil)
					fallthrough
				case httpish:
					md.expectRefused(t, o, -32006, 401, before)
					if !strings.Contains(o.www, `error="invalid_token"`) {
						t.Fatalf("WWW-Authenticate %q: want error=invalid_token", o.www)
					}
				default:
					md.expectRefused(t, o, -32006, 0, before)
				}
			})
			t.Run("right token", func(t *testing.T) {
				before := md.calls.Load()
				s, o := tr.session(t, md, tokAlice, true, nil)
				if o.code != 0 {
					t.Fatalf("initialize with the right token: %v", o)
				}
				if o := s.call(t, "tools/call", recordCall, tokAlice, nil); o.code != 0 {
					t.Fatalf("tools/call with the right token: %v", o)
				}
				if n := md.calls.Load(); n != before+1 {
					t.Fatalf("record ran %d times, want 1", n-before)
				}
				if tr.name() == "http-stateless" {
					return
				}
				// Another subject's token on alice's session.
				o = s.call(t, "tools/call", recordCall, tokBob, nil)
				status := 0
				if httpish {
					status = 403
				}
				md.expectRefused(t, o, -32007, status, before+1)
			})
			t.Run("missing scope", func(t *testing.T) {
				before := md.calls.Load()
				s, o := tr.session(t, md, tokBob, true, nil)
				if o.code != 0 {
					t.Fatalf("initialize: %v", o)
				}
				o = s.call(t, "tools/call", recordCall, tokBob, nil)
				status := 0
				if tr.name() == "http-session" || tr.name() == "http-stateless" {
					status = 403
				}
				md.expectRefused(t, o, -32007, status, before)
				if status == 403 && !strings.Contains(o.www, `error="insufficient_scope", scope="record:call"`) {
					t.Fatalf("WWW-Authenticate %q: want insufficient_scope and the scope", o.www)
				}
			})
			t.Run("before initialize", func(t *testing.T) {
				before := md.calls.Load()
				s, o := tr.session(t, md, tokAlice, false, nil)
				if o.code != 0 {
					t.Fatalf("connect: %v", o)
				}
				switch tr.name() {
				case "http-stateless": // no lifecycle in the stateless era
					if o := s.call(t, "tools/call", recordCall, tokAlice, nil); o.code != 0 || md.calls.Load() != before+1 {
						t.Fatalf("stateless tools/call: %v", o)
					}
				case "http-session": // no session without initialize
					md.expectRefused(t, s.call(t, "tools/call", recordCall, tokAlice, nil), -32600, 400, before)
				default:
					md.expectRefused(t, s.call(t, "tools/call", recordCall, tokAlice, nil), -32008, 0, before)
				}
			})
		})
	}
	// RFC 9728 metadata at both well-known paths.
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		code, ctype, body := get(t, "http://"+md.d.TCPAddr().String()+path)
		var prm ProtectedResourceMetadata
		if code != 200 || !strings.HasPrefix(ctype, "application/json") || json.Unmarshal(body, &prm) != nil ||
			prm.Resource != "http://"+md.d.TCPAddr().String()+"/mcp" || len(prm.BearerMethodsSupported) == 0 {
			t.Fatalf("GET %s: %d %q %s", path, code, ctype, body)
		}
	}
}

func TestAdmissionMatrixSigning(t *testing.T) {
	md := startMatrixDaemon(t, signingSettings(t))
	good := func() *signing { return &signing{key: sigKey} }
	for _, tr := range matrixTransports {
		t.Run(tr.name(), func(t *testing.T) {
			status := 0
			if isHTTP(tr) {
				status = 401
			}
			s, o := tr.session(t, md, "", true, good())
			if o.code != 0 {
				t.Fatalf("signed initialize: %v", o)
			}
			t.Run("signed", func(t *testing.T) {
				before := md.calls.Load()
				if o := s.call(t, "tools/call", recordCall, "", good()); o.code != 0 || md.calls.Load() != before+1 {
					t.Fatalf("signed tools/call: %v (calls %d)", o, md.calls.Load()-before)
				}
			})
			t.Run("unsigned", func(t *testing.T) {
				st := status
				if tr.name() == "legacy-sse" {
					st = 0 // no signature headers to refuse at the edge: POST 202, the error on the stream
				}
				md.expectRefused(t, s.call(t, "tools/call", recordCall, "", nil), -32011, st, md.calls.Load())
			})
			t.Run("bad signature", func(t *testing.T) {
				md.expectRefused(t, s.call(t, "tools/call", recordCall, "", &signing{key: "the-wrong-key-the-wrong-key-1234"}), -32011, status, md.calls.Load())
			})
			t.Run("replay", func(t *testing.T) {
				before := md.calls.Load()
				fixed := &signing{key: sigKey, nonce: "replayed-" + tr.name()}
				if o := s.call(t, "tools/call", recordCall, "", fixed); o.code != 0 {
					t.Fatalf("first use of the nonce: %v", o)
				}
				md.expectRefused(t, s.call(t, "tools/call", recordCall, "", fixed), -32011, status, before+1)
			})
			if tr.name() == "http-session" || tr.name() == "http-stateless" {
				t.Run("signed in params._meta", func(t *testing.T) {
					// Without the headers the signature may travel in params._meta, as on
					// line transports (method + "\n" + params signed).
					before := md.calls.Load()
					hs := &httpSess{base: "http://" + md.d.TCPAddr().String()}
					if x, ok := s.(*httpSess); ok {
						hs.session = x.session
					}
					meta := map[string]any{}
					hdr := map[string]string{}
					if tr.name() == "http-stateless" {
						meta["io.modelcontextprotocol/protocolVersion"] = "2026-07-28"
						meta["io.modelcontextprotocol/clientCapabilities"] = map[string]any{}
						hdr = map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "record"}
					}
					params := good().signMeta("tools/call", meta, recordCall)
					o := hs.post(t, `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":`+params+`}`, "", nil, hdr)
					if o.code != 0 || md.calls.Load() != before+1 {
						t.Fatalf("_meta-signed tools/call over HTTP: %v", o)
					}
				})
			}
		})
	}
}

// TestStrictLifecycleEmptyMeta: an empty params._meta once let any request run before
// initialize (the check skipped requests with a _meta). Only a stateless-era _meta does.
func TestStrictLifecycleEmptyMeta(t *testing.T) {
	md := startMatrixDaemon(t, func(st *Settings) { st.Server.StrictLifecycle = true })
	for _, tr := range []lineTransport{{"tcp"}, {"stdio"}, {"tls"}} {
		t.Run(tr.name(), func(t *testing.T) {
			s, _ := tr.session(t, md, "", false, nil)
			md.expectRefused(t, s.call(t, "tools/call", recordCall, "", nil), -32008, 0, md.calls.Load())
			// A stateless-era request has no lifecycle: served before any initialize.
			before := md.calls.Load()
			c := s.(*lineSession).c
			c.send(`{"jsonrpc":"2.0","id":"st","method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"record","arguments":{}}}`)
			if m := c.waitID(`"st"`); m.Error != nil || md.calls.Load() != before+1 {
				t.Fatalf("stateless-era request before initialize: %+v", m.Error)
			}
		})
	}
}
