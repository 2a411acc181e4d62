package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/erlmcp/erlmcp-go/loop"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/jsonschema-go/jsonschema"
)

// viaMiddleware makes limitsServer install the layer as one Middleware instead of
// Config.Admit plus middleware (TestLimitsAsMiddleware).
var viaMiddleware bool

// limitsServer starts a demo server behind a Limits layer on a loopback port.
func limitsServer(t *testing.T, cfg LimitsConfig) (string, *Limits) {
	t.Helper()
	lim, err := NewLimits(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lim.Close)
	var scfg Config
	if viaMiddleware {
		scfg.Middleware = []Middleware{lim.Middleware()}
	} else {
		lim.Install(&scfg)
	}
	s := newDemoServer(t, scfg)
	// A tool whose schema leaves additionalProperties open (derived schemas close it).
	err = s.AddTool(&Tool{Name: "open", InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"opts":{"type":"object","properties":{"k":{}}}}}`)},
		ToolOptions{Inline: true}, func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
			return &CallToolResult{Content: []Content{Text("ok")}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return startTCP(t, s), lim
}

func errData(t *testing.T, m msg) map[string]any {
	t.Helper()
	var d map[string]any
	if m.Error == nil || json.Unmarshal(m.Error.Data, &d) != nil {
		t.Fatalf("want error data, got %+v", m)
	}
	return d
}

func TestRateLimitTCP(t *testing.T) {
	addr, _ := limitsServer(t, LimitsConfig{RateLimit: &limits.RateLimitConfig{RequestsPerMinute: 5, MaxBurst: -1}})
	c := dial(t, addr)
	for i := 0; i < 5; i++ {
		if m := c.call("ping", nil); m.Error != nil {
			t.Fatalf("ping %d refused: %s", i, m.Error.Message)
		}
	}
	m := c.call("tools/list", nil)
	wantError(t, m, -32003, "rate_limiter.max_requests_per_minute")
	d := errData(t, m)
	if ms, _ := d["retryAfterMs"].(float64); ms <= 0 || ms > 60000 || d["limit"] != 5.0 {
		t.Fatalf("error data %v: want retryAfterMs in (0, 60000] and limit 5", d)
	}
	// Another connection from the same client shares its quota (key_by: principal, the
	// default): opening sessions gains nothing.
	wantError(t, dial(t, addr).call("ping", nil), -32003, "rate limit")
}

// TestLimitsAsMiddleware runs the admission tests with the layer installed as a single
// Middleware (no Config.Admit).
func TestLimitsAsMiddleware(t *testing.T) {
	viaMiddleware = true
	defer func() { viaMiddleware = false }()
	t.Run("rate", TestRateLimitTCP)
	t.Run("guard", TestMemoryGuardMiddleware)
	t.Run("auth", TestAuthTCP)
	t.Run("signing", TestSigningTCP)
	t.Run("fields", TestRejectUnknownFields)
}

// TestAdmitBeforeDecode: with Config.Admit a refused tools/call is answered before its
// arguments are decoded or validated, so an overloaded server spends nothing on it.
func TestAdmitBeforeDecode(t *testing.T) {
	var used atomic.Int64
	addr, lim := limitsServer(t, LimitsConfig{MemoryGuard: &limits.MemoryGuardConfig{
		LimitBytes: 100 << 20, SampleInterval: time.Hour, KeepGoLimit: true,
		Sample: func() int64 { return used.Load() },
	}})
	used.Store(99 << 20)
	lim.MemoryGuard().Sample()
	c := dial(t, addr)
	// Unknown tool and invalid arguments: with the middleware alone these would be reported
	// (prepare runs first); Admit refuses before looking.
	c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"no-such-tool","arguments":{"x":1}}}`)
	wantError(t, c.waitID("1"), -32004, "overloaded")
}

// TestRateLimitKeyBySession: with key_by: session each connection has its own quota.
func TestRateLimitKeyBySession(t *testing.T) {
	addr, _ := limitsServer(t, LimitsConfig{RateLimit: &limits.RateLimitConfig{RequestsPerMinute: 3, MaxBurst: -1}, KeyBySession: true})
	for i := 0; i < 3; i++ {
		c := dial(t, addr)
		for j := 0; j < 3; j++ {
			if m := c.call("ping", nil); m.Error != nil {
				t.Fatalf("connection %d ping %d refused: %s", i, j, m.Error.Message)
			}
		}
		wantError(t, c.call("ping", nil), -32003, "rate limit")
	}
}

func TestMemoryGuardMiddleware(t *testing.T) {
	var used atomic.Int64
	addr, lim := limitsServer(t, LimitsConfig{MemoryGuard: &limits.MemoryGuardConfig{
		LimitBytes: 100 << 20, SampleInterval: time.Hour, KeepGoLimit: true,
		Sample: func() int64 { return used.Load() },
	}})
	c := dial(t, addr)
	c.initialize("2025-11-25")
	used.Store(95 << 20)
	lim.MemoryGuard().Sample()
	if lim.AdmitConn() {
		t.Fatal("AdmitConn while overloaded")
	}
	m := c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "x"}})
	wantError(t, m, -32004, "memory_guard.memory_limit_bytes")
	if d := errData(t, m); d["limit"] != "memory_guard" || d["retryAfterMs"].(float64) <= 0 {
		t.Fatalf("data %v", d)
	}
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("ping refused while overloaded: %s", m.Error.Message)
	}
	used.Store(10 << 20)
	lim.MemoryGuard().Sample()
	if m := c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "x"}}); m.Error != nil {
		t.Fatalf("after recovery: %s", m.Error.Message)
	}
}

func TestMemoryGuardInFlightContinues(t *testing.T) {
	var used atomic.Int64
	addr, lim := limitsServer(t, LimitsConfig{MemoryGuard: &limits.MemoryGuardConfig{
		LimitBytes: 100 << 20, SampleInterval: time.Hour, KeepGoLimit: true,
		Sample: func() int64 { return used.Load() },
	}})
	c := dial(t, addr)
	c.initialize("2025-11-25")
	c.send(`{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"sleep","arguments":{"ms":300}}}`)
	time.Sleep(50 * time.Millisecond)
	used.Store(99 << 20)
	lim.MemoryGuard().Sample()
	if m := c.waitID(`"slow"`); m.Error != nil {
		t.Fatalf("work admitted before the guard tripped was stopped: %s", m.Error.Message)
	}
}

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestAuthTCP(t *testing.T) {
	addr, _ := limitsServer(t, LimitsConfig{
		AuthRequired: true,
		Resource:     "https://mcp.example.com/mcp",
		Auth: &limits.AuthConfig{APIKeys: []limits.APIKey{
			{SHA256: sha("alice-token"), Subject: "alice", Scopes: []string{"tools:basic"}},
			{SHA256: sha("root-token"), Subject: "root", Scopes: []string{"tools:basic", "tools:admin"}},
		}},
		DefaultToolScopes: []string{"tools:basic"},
		ToolScopes:        map[string][]string{"time": {"tools:admin"}},
		RateLimit:         &limits.RateLimitConfig{RequestsPerMinute: 1000},
	})
	initWith := func(c *client, token string) msg {
		p := map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "t", "version": "1"}}
		if token != "" {
			p["_meta"] = map[string]any{MetaAuthorization: "Bearer " + token}
		}
		return c.call("initialize", p)
	}
	// No token: refused, with where to get one.
	c := dial(t, addr)
	m := initWith(c, "")
	wantError(t, m, -32006, "authentication required")
	if d := errData(t, m); d["resource_metadata"] != "https://mcp.example.com/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("data %v", d)
	}
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("ping needs no credentials: %s", m.Error.Message)
	}
	wantError(t, c.call("tools/list", nil), -32006, "authentication required")
	// Wrong token: refused, token not echoed.
	m = initWith(c, "mallory-token")
	wantError(t, m, -32006, "invalid token")
	if strings.Contains(m.Error.Message, "mallory") {
		t.Fatal("error echoes the token")
	}
	// alice: basic tools yes, admin tool no.
	a := dial(t, addr)
	if m := initWith(a, "alice-token"); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	if m := a.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}}); m.Error != nil {
		t.Fatalf("alice echo: %s", m.Error.Message)
	}
	m = a.call("tools/call", map[string]any{"name": "time"})
	wantError(t, m, -32007, `needs scope tools:admin`)
	// root may.
	r := dial(t, addr)
	initWith(r, "root-token")
	if m := r.call("tools/call", map[string]any{"name": "time"}); m.Error != nil {
		t.Fatalf("root time: %s", m.Error.Message)
	}
}

func TestSigningTCP(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	addr, _ := limitsServer(t, LimitsConfig{Signing: &limits.SigningConfig{Keys: [][]byte{key}}})
	c := dial(t, addr)
	signed := func(id int, method, nonce string, tamper bool) string {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		params := `{"_meta":{"` + limits.MetaSignature + `":{"timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"%s"}}}`
		sig := limits.Sign(key, ts, nonce, []byte(method+"\n"+strings.Replace(params, "%s", "", 1)))
		p := strings.Replace(params, "%s", sig, 1)
		if tamper {
			method = "resources/list"
		}
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, p)
	}
	c.send(signed(1, "tools/list", "nonce-aaaa-1", false))
	if m := c.waitID("1"); m.Error != nil {
		t.Fatalf("signed request refused: %s", m.Error.Message)
	}
	c.send(signed(2, "tools/list", "nonce-aaaa-1", false))
	wantError(t, c.waitID("2"), -32011, "already used")
	c.send(signed(3, "tools/list", "nonce-aaaa-3", true))
	wantError(t, c.waitID("3"), -32011, "does not match")
	wantError(t, c.call("tools/list", nil), -32011, "not signed")
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("ping needs no signature: %s", m.Error.Message)
	}
}

func TestRejectUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    LimitsConfig
		args   string
		code   int
		errHas string
	}{
		{"off", LimitsConfig{}, `{"text":"x","extra":1}`, 0, ""},
		{"on, known", LimitsConfig{RejectUnknownFields: true}, `{"text":"x"}`, 0, ""},
		{"on, unknown", LimitsConfig{RejectUnknownFields: true}, `{"text":"x","extra":1}`, -32602, "unknown field /extra"},
		{"on, hostile name", LimitsConfig{RejectUnknownFields: true}, `{"text":"x","a/b~c":1}`, -32602, "/a~1b~0c"},
		{"on, nested unknown allowed", LimitsConfig{RejectUnknownFields: true}, `{"text":"x","opts":{"z":1}}`, 0, ""},
		{"strict, nested unknown", LimitsConfig{StrictSchema: true}, `{"text":"x","opts":{"z":1}}`, -32602, "/opts/z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := limitsServer(t, tc.cfg)
			c := dial(t, addr)
			c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"open","arguments":` + tc.args + `}}`)
			m := c.waitID("1")
			if tc.code == 0 {
				if m.Error != nil {
					t.Fatalf("refused: %s", m.Error.Message)
				}
				return
			}
			wantError(t, m, tc.code, tc.errHas)
		})
	}
}

func TestUnknownFieldWalk(t *testing.T) {
	cases := []struct {
		schema, args string
		nested       bool
		bad          string
	}{
		{`{"type":"object","properties":{"a":{"type":"string"}}}`, `{"a":"x"}`, false, ""},
		{`{"type":"object","properties":{"a":{}}}`, `{"b":1}`, false, "/b"},
		{`{"type":"object","properties":{"a":{}},"additionalProperties":true}`, `{"b":1}`, false, ""},
		{`{"type":"object","properties":{"a":{}},"patternProperties":{"^x-":{}}}`, `{"x-y":1}`, false, ""},
		{`{"type":"object"}`, `{"anything":1}`, false, ""},
		{`{"type":"object","allOf":[{"properties":{"b":{}}}],"properties":{"a":{}}}`, `{"a":1,"b":2}`, false, ""},
		{`{"type":"object","anyOf":[{"properties":{"b":{}}}]}`, `{"c":1}`, false, ""},
		{`{"type":"object","properties":{"o":{"type":"object","properties":{"k":{}}}}}`, `{"o":{"z":1}}`, false, ""},
		{`{"type":"object","properties":{"o":{"type":"object","properties":{"k":{}}}}}`, `{"o":{"z":1}}`, true, "/o/z"},
		{`{"type":"object","properties":{"l":{"type":"array","items":{"properties":{"k":{}}}}}}`, `{"l":[{"k":1},{"q":1}]}`, true, "/l/1/q"},
	}
	for i, tc := range cases {
		var s jsonschema.Schema
		if err := json.Unmarshal([]byte(tc.schema), &s); err != nil {
			t.Fatal(err)
		}
		var v any
		json.Unmarshal([]byte(tc.args), &v)
		path, ok := unknownField(&s, v, "", tc.nested, 0)
		if (tc.bad == "") != ok || path != tc.bad {
			t.Errorf("case %d: got %q %v, want %q", i, path, ok, tc.bad)
		}
	}
}

func TestWellKnownURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com/mcp":   "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com":       "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com:8443/": "https://mcp.example.com:8443/.well-known/oauth-protected-resource",
		"not a url":                     "",
	} {
		if got := wellKnownURL(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestLimitsErrors(t *testing.T) {
	e := RateLimitError(limits.RateLimitConfig{RequestsPerMinute: 1000, MaxBurst: 100, BurstInterval: 100 * time.Millisecond}, 1500*time.Microsecond, limits.ScopeBurst)
	if e.Code.HTTPStatus() != 429 || !strings.Contains(e.Message, "100 requests per 100ms") {
		t.Fatalf("%v", e)
	}
	if d := e.Data.(map[string]any); d["retryAfterMs"] != int64(2) {
		t.Fatalf("retryAfterMs %v, want 2 (rounded up)", d["retryAfterMs"])
	}
	if RetryAfterSeconds(1500*time.Millisecond) != 2 || RetryAfterSeconds(time.Millisecond) != 1 {
		t.Fatal("RetryAfterSeconds")
	}
	var l *Limits
	if !l.AdmitConn() || l.RateLimiter() != nil || l.MemoryGuard() != nil || l.VerifyHTTP("", "", "", nil) != nil {
		t.Fatal("nil Limits must admit everything")
	}
	_ = context.Background
}

func TestSecuritySettingsValidate(t *testing.T) {
	cases := []struct {
		key   string
		tweak func(*Settings)
	}{
		{"rate_limiter.max_requests_per_minute", func(s *Settings) { s.RateLimiter.MaxRequestsPerMinute = 0 }},
		{"rate_limiter.max_burst", func(s *Settings) { s.RateLimiter.MaxBurst = -1 }},
		{"rate_limiter.key_by", func(s *Settings) { s.RateLimiter.KeyBy = "cookie" }},
		{"memory_guard.memory_limit_bytes", func(s *Settings) { s.MemoryGuard.MemoryLimitBytes = 1000 }},
		{"memory_guard.low_water", func(s *Settings) { s.MemoryGuard.LowWater = 0.9 }},
		{"auth.resource", func(s *Settings) { s.Auth.Enabled = true; s.Auth.JWT.Enabled = true; s.Auth.JWT.JWKSFile = "/x" }},
		{"auth.api_keys[0]", func(s *Settings) {
			s.Auth.Enabled = true
			s.Auth.APIKeys = []limits.APIKey{{SHA256: "nothex", Subject: "a"}}
		}},
		{"auth.jwt.algorithms", func(s *Settings) {
			s.Auth.Enabled, s.Auth.Resource = true, "https://x"
			s.Auth.JWT = JWTSettings{Enabled: true, JWKSFile: "/x", Algorithms: []string{"none"}}
		}},
		{"request_signing.signing_key", func(s *Settings) { s.RequestSigning.Enabled = true }},
		{"request_signing.signing_algorithm", func(s *Settings) {
			s.RequestSigning = RequestSigningSettings{Enabled: true, SigningKey: "env:X", SigningAlgorithm: "md5"}
		}},
		{"transports.tls.tls_certfile", func(s *Settings) { s.Transports.TLS.Enabled = true }},
		{"transports.tls.tls_verify", func(s *Settings) { s.Transports.TLS.Verify = "maybe" }},
		{"transports.tls.tls_cacertfile", func(s *Settings) {
			s.Transports.TLS = TLSSettings{Enabled: true, Addr: "x:1", CertFile: "a", KeyFile: "b", Verify: "verify_peer"}
		}},
		{"transports.tls.min_version", func(s *Settings) { s.Transports.TLS.MinVersion = "1.0" }},
	}
	for _, tc := range cases {
		st := DefaultSettings()
		tc.tweak(&st)
		err := st.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: got %v", tc.key, err)
		}
	}
	st := DefaultSettings()
	if err := st.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	// Unknown keys in the new sections are refused by the YAML decoder.
	if err := st.decode(strings.NewReader("rate_limiter:\n  max_requests_per_minit: 5\n")); err == nil || !strings.Contains(err.Error(), "max_requests_per_minit") {
		t.Fatalf("unknown key: %v", err)
	}
	if err := st.decode(strings.NewReader("rate_limiter:\n  max_requests_per_minute: 7\nschema_validator:\n  strict_mode: true\ntransports:\n  tls:\n    tls_verify: verify_peer\n")); err != nil {
		t.Fatal(err)
	}
	if st.RateLimiter.MaxRequestsPerMinute != 7 || !st.SchemaValidator.StrictMode || st.Transports.TLS.Verify != "verify_peer" {
		t.Fatalf("%+v", st.RateLimiter)
	}
}

func TestJWTOverTCP(t *testing.T) {
	key := []byte("jwt-hmac-key-jwt-hmac-key-jwt-hmac")
	const aud = "https://mcp.example.com/mcp"
	addr, _ := limitsServer(t, LimitsConfig{
		AuthRequired: true, Resource: aud,
		Auth:       &limits.AuthConfig{JWT: &limits.JWTConfig{Audience: aud, HMACKeys: [][]byte{key}}},
		ToolScopes: map[string][]string{"echo": {"tools:echo"}},
	})
	mint := func(claims jwt.MapClaims, k []byte) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "agent-7", "aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "scope": "tools:echo"}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	echo := `{"name":"echo","arguments":{"text":"hi"}`
	cases := []struct {
		name, token string
		code        int
		errHas      string
	}{
		{"good", mint(good(), key), 0, ""},
		{"wrong audience", mint(with("aud", "https://other.example.com"), key), -32006, "audience"},
		{"expired", mint(with("exp", time.Now().Add(-time.Hour).Unix()), key), -32006, "expired"},
		{"bad signature", mint(good(), []byte("some-other-key-some-other-key-som")), -32006, "signature is invalid"},
		{"missing scope", mint(with("scope", "tools:read"), key), -32007, "needs scope tools:echo"},
		{"garbage", "not.a.jwt", -32006, "malformed"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			// Stateless era: the token rides in every request's _meta.
			line := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s,"_meta":{%q:"Bearer %s"}}}`, i+1, echo, MetaAuthorization, tc.token)
			c.send(line)
			m := c.waitID(strconv.Itoa(i + 1))
			if tc.code == 0 {
				if m.Error != nil {
					t.Fatalf("refused: %s", m.Error.Message)
				}
				return
			}
			wantError(t, m, tc.code, tc.errHas)
			if strings.Contains(m.Error.Message, tc.token) {
				t.Fatal("error echoes the token")
			}
		})
	}
}

func TestRefuseConnWhileOverloaded(t *testing.T) {
	var used atomic.Int64
	lim, err := NewLimits(LimitsConfig{MemoryGuard: &limits.MemoryGuardConfig{
		LimitBytes: 100 << 20, SampleInterval: time.Hour, KeepGoLimit: true,
		Sample: func() int64 { return used.Load() },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	s := newDemoServer(t, Config{})
	sec := &security{lim: lim}
	addr := startTCP(t, s, func(c *loop.Config) { c.Handler = sec.lineHandler(s) })
	used.Store(99 << 20)
	lim.MemoryGuard().Sample()
	c := dial(t, addr)
	c.send(pingLine)
	wantError(t, c.recv(), -32004, "overloaded")
	if _, err := c.tryRecv(2 * time.Second); err == nil {
		t.Fatal("connection refused by the memory guard stayed open")
	}
	before := s.Stats().Sessions
	used.Store(1 << 20)
	lim.MemoryGuard().Sample()
	c2 := dial(t, addr)
	if m := c2.call("ping", nil); m.Error != nil {
		t.Fatalf("after recovery: %s", m.Error.Message)
	}
	if before != 0 {
		t.Fatalf("%d sessions made for refused connections", before)
	}
}
