package limits

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testAud = "https://mcp.example.com/mcp"

var hmacKey = []byte("jwt-hmac-key-jwt-hmac-key-jwt-hmac")

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksOf(t *testing.T, keys map[string]any) []byte {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			raw, err := k.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
				"x": b64(raw[1:33]), "y": b64(raw[33:])})
		}
	}
	b, _ := json.Marshal(set)
	return b
}

type claims map[string]any

func mint(t *testing.T, method jwt.SigningMethod, kid string, key any, c claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(c))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticate(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwksOf(t, map[string]any{"r1": &rsaKey.PublicKey, "e1": &ecKey.PublicKey}), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(AuthConfig{
		APIKeys: []APIKey{{SHA256: sha("key-alice"), Subject: "alice", Scopes: []string{"tools:read"}}},
		JWT:     &JWTConfig{Audience: testAud, Issuer: "https://idp.example.com", HMACKeys: [][]byte{hmacKey}, JWKSFile: jwksFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	now := t0
	base := func() claims {
		return claims{"sub": "bob", "aud": testAud, "iss": "https://idp.example.com",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "scope": "tools:read tools:write"}
	}
	with := func(k string, v any) claims { c := base(); c[k] = v; return c }
	without := func(k string) claims { c := base(); delete(c, k); return c }
	rsaPubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)

	cases := []struct {
		name    string
		token   string
		subject string
		scopes  int
		errHas  string
	}{
		{"api key", "key-alice", "alice", 1, ""},
		{"unknown api key", "key-mallory", "", 0, "unknown token"},
		{"empty", "", "", 0, "no credentials"},
		{"hs256", mint(t, jwt.SigningMethodHS256, "", hmacKey, base()), "bob", 2, ""},
		{"rs256 by kid", mint(t, jwt.SigningMethodRS256, "r1", rsaKey, base()), "bob", 2, ""},
		{"es256 by kid", mint(t, jwt.SigningMethodES256, "e1", ecKey, base()), "bob", 2, ""},
		{"es256 without kid (one EC key)", mint(t, jwt.SigningMethodES256, "", ecKey, base()), "bob", 2, ""},
		{"scp array", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("scp", []string{"a", "b", "c"})), "bob", 5, ""},
		{"wrong audience", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("aud", "https://other.example.com")), "", 0, "audience"},
		{"audience list containing us", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("aud", []string{"x", testAud})), "bob", 2, ""},
		{"no audience", mint(t, jwt.SigningMethodHS256, "", hmacKey, without("aud")), "", 0, "required claim"},
		{"expired", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("exp", now.Add(-time.Minute).Unix())), "", 0, "expired"},
		{"expired within leeway", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("exp", now.Add(-10*time.Second).Unix())), "bob", 2, ""},
		{"no exp", mint(t, jwt.SigningMethodHS256, "", hmacKey, without("exp")), "", 0, "required claim"},
		{"not yet valid", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("nbf", now.Add(time.Hour).Unix())), "", 0, "not valid yet"},
		{"wrong issuer", mint(t, jwt.SigningMethodHS256, "", hmacKey, with("iss", "https://evil.example.com")), "", 0, "issuer"},
		{"no sub", mint(t, jwt.SigningMethodHS256, "", hmacKey, without("sub")), "", 0, "no sub"},
		{"bad hs256 signature", mint(t, jwt.SigningMethodHS256, "", []byte("not-the-key-not-the-key-not-the-k"), base()), "", 0, "signature is invalid"},
		{"es256 by unknown key", mint(t, jwt.SigningMethodES256, "e1", otherEC, base()), "", 0, "signature is invalid"},
		{"unknown kid", mint(t, jwt.SigningMethodRS256, "nope", rsaKey, base()), "", 0, "cannot be verified"},
		{"alg none", mint(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, base()), "", 0, "signature is invalid"},
		{"alg confusion: HS256 keyed with the RSA public key", mint(t, jwt.SigningMethodHS256, "r1", rsaPubDER, base()), "", 0, "signature is invalid"},
		{"hs384 not allowed", mint(t, jwt.SigningMethodHS384, "", hmacKey, base()), "", 0, "signature is invalid"},
		{"garbage with dots", "a.b.c", "", 0, "malformed"},
		{"huge token", strings.Repeat("a", 20000) + ".b.c", "", 0, "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), tc.token, now)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v, want it to mention %q", err, tc.errHas)
				}
				if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNoCredentials) {
					t.Fatalf("err %v is neither ErrInvalidToken nor ErrNoCredentials", err)
				}
				if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
					t.Fatalf("error quotes the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != tc.subject || len(p.Scopes) != tc.scopes {
				t.Fatalf("principal %+v, want subject %q with %d scopes", p, tc.subject, tc.scopes)
			}
		})
	}
}

func TestJWKSURLRefresh(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var current atomic.Pointer[[]byte]
	first := jwksOf(t, map[string]any{"k1": &k1.PublicKey})
	current.Store(&first)
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(*current.Load())
	}))
	defer srv.Close()
	a, err := NewAuthenticator(AuthConfig{JWT: &JWTConfig{Audience: testAud, JWKSURL: srv.URL, JWKSMinRefresh: time.Nanosecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := claims{"sub": "svc", "aud": testAud, "exp": time.Now().Add(time.Hour).Unix()}
	if _, err := a.Authenticate(context.Background(), mint(t, jwt.SigningMethodES256, "k1", k1, c), time.Now()); err != nil {
		t.Fatal(err)
	}
	// The IdP rotates to k2: a token with the new kid triggers a refresh.
	second := jwksOf(t, map[string]any{"k1": &k1.PublicKey, "k2": &k2.PublicKey})
	current.Store(&second)
	if _, err := a.Authenticate(context.Background(), mint(t, jwt.SigningMethodES256, "k2", k2, c), time.Now()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if fetches.Load() != 2 {
		t.Fatalf("%d fetches, want 2", fetches.Load())
	}
}

func TestJWKSRefreshThrottled(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := jwksOf(t, map[string]any{"k1": &k1.PublicKey})
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(body)
	}))
	defer srv.Close()
	a, err := NewAuthenticator(AuthConfig{JWT: &JWTConfig{Audience: testAud, JWKSURL: srv.URL, JWKSMinRefresh: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := claims{"sub": "svc", "aud": testAud, "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i < 50; i++ {
		a.Authenticate(context.Background(), mint(t, jwt.SigningMethodES256, "made-up", k1, c), time.Now())
	}
	if fetches.Load() != 1 {
		t.Fatalf("made-up kids caused %d fetches, want 1 (the initial load)", fetches.Load())
	}
}

func TestParseJWKSHostile(t *testing.T) {
	for _, in := range []string{
		``, `null`, `{"keys":[]}`, `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `{"keys":[{"kty":"RSA","use":"enc"}]}`,
	} {
		if n, err := ParseJWKS([]byte(in)); err == nil {
			t.Errorf("%.60s: %d keys, want an error", in, n)
		}
	}
}

func TestAuthConfigValidate(t *testing.T) {
	for _, c := range []AuthConfig{
		{},
		{APIKeys: []APIKey{{SHA256: "abc", Subject: "x"}}},
		{APIKeys: []APIKey{{SHA256: sha("a")}}},
		{APIKeys: []APIKey{{SHA256: sha("a"), Subject: "x"}, {SHA256: sha("a"), Subject: "y"}}},
		{JWT: &JWTConfig{HMACKeys: [][]byte{hmacKey}}},
		{JWT: &JWTConfig{Audience: testAud}},
		{JWT: &JWTConfig{Audience: testAud, HMACKeys: [][]byte{[]byte("short")}}},
		{JWT: &JWTConfig{Audience: testAud, JWKSURL: "http://idp.example.com/jwks"}},
		{JWT: &JWTConfig{Audience: testAud, HMACKeys: [][]byte{hmacKey}, Algorithms: []string{"none"}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestScopeChecker(t *testing.T) {
	sc := NewScopeChecker(map[string][]string{"delete": {"tools:write", "admin"}, "open": {}}, []string{"tools:read"})
	p := &Principal{Subject: "bob", Scopes: []string{"tools:read", "tools:write"}}
	cases := []struct {
		p    *Principal
		tool string
		ok   bool
	}{
		{p, "delete", false}, {p, "echo", true}, {p, "open", true},
		{nil, "open", true}, {nil, "echo", false},
		{&Principal{Scopes: []string{"tools:write", "admin"}}, "delete", true},
	}
	for _, tc := range cases {
		err := sc.Check(tc.p, tc.tool)
		if (err == nil) != tc.ok {
			t.Errorf("%v on %s: %v", tc.p, tc.tool, err)
		}
		if err != nil && !errors.Is(err, ErrInsufficientScope) {
			t.Errorf("not ErrInsufficientScope: %v", err)
		}
	}
	if err := sc.Check(p, "delete"); !strings.Contains(err.Error(), "admin") || strings.Contains(err.Error(), "tools:write") {
		t.Errorf("error should name only the missing scope: %v", err)
	}
	var none *ScopeChecker
	if none.Check(nil, "x") != nil {
		t.Error("nil checker requires nothing")
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": "", "": ""} {
		if got := BearerToken(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
