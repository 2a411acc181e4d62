package limits

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Authentication errors. They say what is wrong with a credential, never what it was.
var (
	// ErrNoCredentials: the request carries no bearer token.
	ErrNoCredentials = errors.New("limits: no credentials")
	// ErrInvalidToken: the token is unknown, malformed, expired, for another audience or
	// badly signed; the wrapped text tells which.
	ErrInvalidToken = errors.New("limits: invalid token")
	// ErrInsufficientScope: the principal lacks a scope the operation needs.
	ErrInsufficientScope = errors.New("limits: insufficient scope")
)

// Principal is an authenticated caller.
type Principal struct {
	// Subject identifies the caller: the API key's subject, the JWT's sub, or the client
	// certificate's subject. Rate limits are keyed by it.
	Subject string
	// Scopes are what the caller may do (API key scopes, the JWT's scope/scp claim).
	Scopes []string
	// Method is how it authenticated: "api_key", "jwt" or "mtls".
	Method string
	// Expires is when the credential stops being valid (zero: never).
	Expires time.Time
}

// HasScopes reports whether p holds every scope in need (true when need is empty).
func (p *Principal) HasScopes(need []string) bool {
	if p == nil {
		return len(need) == 0
	}
	for _, s := range need {
		if !slices.Contains(p.Scopes, s) {
			return false
		}
	}
	return true
}

// APIKey is a static bearer token, stored hashed: SHA256 is the lowercase hex SHA-256 of the
// token (`printf %s "$TOKEN" | sha256sum`), so the config file holds no usable secret.
type APIKey struct {
	SHA256  string   `json:"sha256" yaml:"sha256"`
	Subject string   `json:"subject" yaml:"subject"`
	Scopes  []string `json:"scopes" yaml:"scopes"`
}

// JWTConfig configures bearer JWTs (an OAuth 2.1 resource server, as the MCP authorization
// specification asks).
type JWTConfig struct {
	// Audience is this server's resource identifier (its canonical URL): the token's aud
	// must contain it. Required: a token minted for another service is refused.
	Audience string `json:"audience"`
	// Issuer, when set, must equal the token's iss.
	Issuer string `json:"issuer"`
	// Algorithms allowed; default HS256, RS256 and ES256. "none" is never allowed.
	Algorithms []string `json:"algorithms"`
	// HMACKeys verify HS256 tokens (load with LoadSecret; ≥ 32 bytes each).
	HMACKeys [][]byte `json:"-"`
	// JWKSFile and JWKSURL supply public keys (RS256, ES256) as a JSON Web Key Set.
	// The URL must be https (or http on loopback, for tests).
	JWKSFile string `json:"jwks_file"`
	JWKSURL  string `json:"jwks_url"`
	// JWKSRefresh is how often the key set is reloaded. If zero, 5 minutes. A token with an
	// unknown kid also triggers a reload, at most once per JWKSMinRefresh (default 30s).
	JWKSRefresh    time.Duration `json:"jwks_refresh"`
	JWKSMinRefresh time.Duration `json:"jwks_min_refresh"`
	// Leeway tolerates clock differences on exp and nbf. If zero, 30s.
	Leeway time.Duration `json:"leeway"`
}

// AuthConfig configures an Authenticator.
type AuthConfig struct {
	APIKeys []APIKey   `json:"api_keys"`
	JWT     *JWTConfig `json:"jwt"`
	// HTTPClient fetches JWKSURL. If nil, a client with a 5s timeout.
	HTTPClient *http.Client `json:"-"`
}

// Validate reports the first bad field.
func (c *AuthConfig) Validate() error {
	if len(c.APIKeys) == 0 && c.JWT == nil {
		return errors.New("limits: auth needs api_keys or jwt")
	}
	seen := map[string]bool{}
	for i, k := range c.APIKeys {
		h := strings.ToLower(k.SHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("limits: auth api_keys[%d].sha256 must be 64 hex digits (sha256sum of the token)", i)
		}
		if k.Subject == "" {
			return fmt.Errorf("limits: auth api_keys[%d].subject must not be empty", i)
		}
		if seen[h] {
			return fmt.Errorf("limits: auth api_keys[%d] repeats an earlier key", i)
		}
		seen[h] = true
	}
	if j := c.JWT; j != nil {
		if j.Audience == "" {
			return errors.New("limits: auth jwt.audience must be set (this server's resource URL)")
		}
		for _, a := range j.Algorithms {
			if !slices.Contains([]string{"HS256", "RS256", "ES256"}, a) {
				return fmt.Errorf("limits: auth jwt.algorithms: %q is not one of HS256, RS256, ES256", a)
			}
		}
		for i, k := range j.HMACKeys {
			if len(k) < 32 {
				return fmt.Errorf("limits: auth jwt HMAC key #%d is %d bytes; want at least 32", i+1, len(k))
			}
		}
		if len(j.HMACKeys) == 0 && j.JWKSFile == "" && j.JWKSURL == "" {
			return errors.New("limits: auth jwt needs hmac keys, jwks_file or jwks_url")
		}
		if j.JWKSURL != "" && !strings.HasPrefix(j.JWKSURL, "https://") && !isLoopbackHTTP(j.JWKSURL) {
			return fmt.Errorf("limits: auth jwt.jwks_url %q must be https", j.JWKSURL)
		}
		if j.Leeway < 0 || j.JWKSRefresh < 0 || j.JWKSMinRefresh < 0 {
			return errors.New("limits: auth jwt durations must be ≥ 0")
		}
	}
	return nil
}

func isLoopbackHTTP(u string) bool {
	return strings.HasPrefix(u, "http://127.0.0.1:") || strings.HasPrefix(u, "http://localhost:") || strings.HasPrefix(u, "http://[::1]:")
}

// maxTokenBytes bounds a bearer token before any parsing.
const maxTokenBytes = 16 << 10

// Authenticator turns bearer tokens into Principals. Safe for concurrent use.
type Authenticator struct {
	apiKeys map[[sha256.Size]byte]*Principal
	jwt     *JWTConfig
	popts   []jwt.ParserOption
	jwks    *jwksSource
}

// NewAuthenticator builds an Authenticator; with a JWKS file or URL it loads the key set
// now (an error if it cannot) and refreshes it in the background until Close.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{apiKeys: make(map[[sha256.Size]byte]*Principal)}
	for _, k := range cfg.APIKeys {
		var h [sha256.Size]byte
		_, _ = hex.Decode(h[:], []byte(strings.ToLower(k.SHA256)))
		a.apiKeys[h] = &Principal{Subject: k.Subject, Scopes: slices.Clone(k.Scopes), Method: "api_key"}
	}
	if cfg.JWT != nil {
		j := *cfg.JWT
		if len(j.Algorithms) == 0 {
			j.Algorithms = []string{"HS256", "RS256", "ES256"}
		}
		if j.Leeway == 0 {
			j.Leeway = 30 * time.Second
		}
		if j.JWKSRefresh == 0 {
			j.JWKSRefresh = 5 * time.Minute
		}
		if j.JWKSMinRefresh == 0 {
			j.JWKSMinRefresh = 30 * time.Second
		}
		a.jwt = &j
		opts := []jwt.ParserOption{
			jwt.WithValidMethods(j.Algorithms),
			jwt.WithAudience(j.Audience),
			jwt.WithLeeway(j.Leeway),
			jwt.WithExpirationRequired(),
		}
		if j.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(j.Issuer))
		}
		a.popts = opts
		if j.JWKSFile != "" || j.JWKSURL != "" {
			client := cfg.HTTPClient
			if client == nil {
				client = &http.Client{Timeout: 5 * time.Second}
			}
			src, err := newJWKSSource(j.JWKSFile, j.JWKSURL, client, j.JWKSRefresh, j.JWKSMinRefresh)
			if err != nil {
				return nil, err
			}
			a.jwks = src
		}
	}
	return a, nil
}

// Close stops the JWKS refresh. Idempotent.
func (a *Authenticator) Close() {
	if a.jwks != nil {
		a.jwks.close()
	}
}

// BearerToken returns the token of an Authorization header value "Bearer <token>", or "".
func BearerToken(authorization string) string {
	if len(authorization) > 7 && strings.EqualFold(authorization[:7], "bearer ") {
		return strings.TrimSpace(authorization[7:])
	}
	return ""
}

// Authenticate checks a bearer token at now: an API key (by its SHA-256) or a JWT (three
// dot-separated parts). Errors wrap ErrNoCredentials or ErrInvalidToken with the reason.
func (a *Authenticator) Authenticate(ctx context.Context, token string, now time.Time) (*Principal, error) {
	if token == "" {
		return nil, ErrNoCredentials
	}
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("%w: token is %d bytes, longer than %d", ErrInvalidToken, len(token), maxTokenBytes)
	}
	if len(a.apiKeys) > 0 {
		// The lookup is by hash: its timing can tell at most something about the hash of a
		// guess, never about a key, so no constant-time compare is needed here.
		if p, ok := a.apiKeys[sha256.Sum256([]byte(token))]; ok {
			cp := *p
			return &cp, nil
		}
	}
	if a.jwt == nil || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: unknown token", ErrInvalidToken)
	}
	return a.parseJWT(ctx, token, now)
}

// jwtClaims are the registered claims plus the OAuth scope claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	Scope string   `json:"scope,omitempty"` // RFC 8693 / 9068: space-separated
	Scp   []string `json:"scp,omitempty"`   // common alternative: an array
}

func (a *Authenticator) parseJWT(ctx context.Context, token string, now time.Time) (*Principal, error) {
	var claims jwtClaims
	// A parser per token: its options hold the clock, and parsers are not to be shared
	// while changing them.
	p := jwt.NewParser(append(a.popts[:len(a.popts):len(a.popts)], jwt.WithTimeFunc(func() time.Time { return now }))...)
	_, err := p.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) { return a.key(ctx, t) })
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, jwtReason(err))
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: token has no sub claim", ErrInvalidToken)
	}
	pr := &Principal{Subject: claims.Subject, Method: "jwt", Scopes: claims.Scp}
	if claims.Scope != "" {
		pr.Scopes = append(pr.Scopes, strings.Fields(claims.Scope)...)
	}
	if claims.ExpiresAt != nil {
		pr.Expires = claims.ExpiresAt.Time
	}
	return pr, nil
}

// jwtReason turns the library's error into a short reason without token contents.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience is not this server"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer is not trusted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim (exp, aud)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified (unknown key or algorithm)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	}
	return "token is invalid"
}

// key finds the verification key for a token by its alg and kid.
func (a *Authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string)
	kid, _ := t.Header["kid"].(string)
	if alg == "HS256" {
		if len(a.jwt.HMACKeys) == 0 {
			return nil, errors.New("no HMAC key")
		}
		// Several keys: the library takes a VerificationKeySet and tries each.
		ks := jwt.VerificationKeySet{}
		for _, k := range a.jwt.HMACKeys {
			ks.Keys = append(ks.Keys, k)
		}
		return ks, nil
	}
	if a.jwks == nil {
		return nil, errors.New("no key set")
	}
	if k := a.jwks.find(kid, alg); k != nil {
		return k, nil
	}
	if a.jwks.refreshIfAllowed(ctx) {
		if k := a.jwks.find(kid, alg); k != nil {
			return k, nil
		}
	}
	return nil, errors.New("unknown key")
}

// ScopeChecker holds the scopes each tool needs. The zero value requires nothing.
type ScopeChecker struct {
	mu    sync.RWMutex
	tools map[string][]string
	def   []string
}

// NewScopeChecker returns a checker: tools maps a tool name to the scopes it needs; def
// applies to tools not listed (nil: none).
func NewScopeChecker(tools map[string][]string, def []string) *ScopeChecker {
	sc := &ScopeChecker{tools: make(map[string][]string, len(tools)), def: slices.Clone(def)}
	for k, v := range tools {
		sc.tools[k] = slices.Clone(v)
	}
	return sc
}

// Need returns the scopes the tool needs.
func (sc *ScopeChecker) Need(tool string) []string {
	if sc == nil {
		return nil
	}
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	if s, ok := sc.tools[tool]; ok {
		return s
	}
	return sc.def
}

// Check returns nil if p may call tool, else an error wrapping ErrInsufficientScope that
// names the missing scopes (scope names are not secret).
func (sc *ScopeChecker) Check(p *Principal, tool string) error {
	need := sc.Need(tool)
	if p.HasScopes(need) {
		return nil
	}
	var missing []string
	for _, s := range need {
		if p == nil || !slices.Contains(p.Scopes, s) {
			missing = append(missing, s)
		}
	}
	return fmt.Errorf("%w: tool %q needs scope %s", ErrInsufficientScope, tool, strings.Join(missing, " "))
}
