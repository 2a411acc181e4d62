package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/google/jsonschema-go/jsonschema"
)

// LimitsConfig configures Limits: admission (rate limits, memory guard), authentication and
// authorization, request signing and the stricter schema checks. A nil section is off; the
// zero value admits everything.
type LimitsConfig struct {
	// RateLimit limits requests per client and in total (nil: off).
	RateLimit *limits.RateLimitConfig
	// KeyBySession keys clients that have not authenticated by their session instead of by
	// their remote address (rate_limiter.key_by: session). Off by default: with it, every
	// new session or connection gets a fresh quota.
	KeyBySession bool
	// MemoryGuard refuses new work above its high-water mark (nil: off). It also sets the Go
	// soft memory limit.
	MemoryGuard *limits.MemoryGuardConfig
	// AuthRequired makes every request but ping carry credentials: a bearer token (API key
	// or JWT, checked by Auth) or a verified client certificate on the TLS listener.
	AuthRequired bool
	// Auth checks bearer tokens (nil: none accepted; only mTLS can authenticate).
	Auth *limits.AuthConfig
	// Resource is this server's canonical URL, AuthorizationServers the issuers of its
	// tokens: both go into the RFC 9728 metadata and the 401's WWW-Authenticate.
	Resource             string
	AuthorizationServers []string
	// ToolScopes maps a tool to the scopes a caller needs to call it; DefaultToolScopes
	// applies to unlisted tools. Checked only when AuthRequired.
	ToolScopes        map[string][]string
	DefaultToolScopes []string
	// MTLSScopes are the scopes of a client authenticated by certificate only.
	MTLSScopes []string
	// Signing verifies request signatures on line transports (TCP, TLS, stdio) from
	// params._meta; HTTP requests are verified from headers by the HTTP layer (VerifyHTTP).
	Signing *limits.SigningConfig
	// RejectUnknownFields refuses tools/call argument properties the tool's inputSchema does
	// not declare (where the schema does not say additionalProperties itself).
	RejectUnknownFields bool
	// StrictSchema extends RejectUnknownFields to nested objects and refuses a result
	// without structuredContent from a tool that declares an outputSchema.
	StrictSchema bool
	// Logger receives state changes (memory guard) and refusals at Debug. Default: discarded.
	Logger *slog.Logger
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Limits is the admission and security layer of a Server: install Middleware() in
// Config.Middleware; transports call AdmitConn on accept and the HTTP layer calls
// RateLimiter, Authenticate and VerifyHTTP at its edge. Safe for concurrent use.
type Limits struct {
	cfg              LimitsConfig
	rl               *limits.RateLimiter
	guard            *limits.MemoryGuard
	auth             *limits.Authenticator
	verifier         *limits.Verifier
	scopes           *limits.ScopeChecker
	authRequired     bool
	resourceMetadata string
	prm              *ProtectedResourceMetadata
	log              *slog.Logger
	now              func() time.Time
	schemas          sync.Map // tool name → *strictSchema
	onHTTPLimited    func()   // counts 429s of plain HTTP routes (limits_http.go)
}

// NewLimits builds the layer from cfg (copied); Close releases its goroutines and restores
// the Go memory limit.
func NewLimits(cfg LimitsConfig) (*Limits, error) {
	l := &Limits{cfg: cfg, authRequired: cfg.AuthRequired, log: cfg.Logger, now: cfg.Now}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	var err error
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if cfg.RateLimit != nil {
		if l.rl, err = limits.NewRateLimiter(*cfg.RateLimit); err != nil {
			return nil, err
		}
	}
	if cfg.MemoryGuard != nil {
		if l.guard, err = limits.NewMemoryGuard(*cfg.MemoryGuard); err != nil {
			return nil, err
		}
		l.guard.OnChange(func(old, nw limits.MemoryState) {
			limit, high, low := l.guard.Limit()
			l.log.Warn("memory guard "+nw.String(), "in_use_bytes", l.guard.InUse(), "limit_bytes", limit, "high_water_bytes", high, "low_water_bytes", low)
		})
	}
	if cfg.Auth != nil {
		if l.auth, err = limits.NewAuthenticator(*cfg.Auth); err != nil {
			return nil, err
		}
	}
	if cfg.Signing != nil {
		if l.verifier, err = limits.NewVerifier(*cfg.Signing); err != nil {
			return nil, err
		}
	}
	if cfg.AuthRequired {
		l.scopes = limits.NewScopeChecker(cfg.ToolScopes, cfg.DefaultToolScopes)
		if cfg.Resource != "" {
			l.resourceMetadata = wellKnownURL(cfg.Resource)
		}
		l.prm = &ProtectedResourceMetadata{Resource: cfg.Resource, AuthorizationServers: cfg.AuthorizationServers,
			BearerMethodsSupported: []string{"header"}, ScopesSupported: allScopes(cfg.ToolScopes, cfg.DefaultToolScopes)}
	}
	return l, nil
}

// wellKnownURL is RFC 9728's metadata URL for a resource: the well-known path inserted
// between the host and the resource's path.
func wellKnownURL(resource string) string {
	i := strings.Index(resource, "://")
	if i < 0 {
		return ""
	}
	rest := resource[i+3:]
	host, path := rest, ""
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		host, path = rest[:j], strings.TrimRight(rest[j:], "/")
	}
	return resource[:i+3] + host + "/.well-known/oauth-protected-resource" + path
}

func allScopes(m map[string][]string, def []string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v...)
	}
	out = append(out, def...)
	sort.Strings(out)
	return slices.Compact(out)
}

// Close stops the rate limiter's cleanup, the memory guard's sampling and the JWKS
// refresh. Idempotent.
func (l *Limits) Close() {
	if l == nil {
		return
	}
	if l.rl != nil {
		l.rl.Close()
	}
	if l.guard != nil {
		l.guard.Close()
	}
	if l.auth != nil {
		l.auth.Close()
	}
}

// RateLimiter returns the rate limiter, or nil when rate limiting is off. The HTTP layer
// calls Allow(clientIP, time.Now()) for routes outside MCP (/api/ping) and answers 429 with
// Retry-After when refused.
func (l *Limits) RateLimiter() *limits.RateLimiter {
	if l == nil {
		return nil
	}
	return l.rl
}

// MemoryGuard returns the memory guard, or nil when it is off. Health checks read State
// and register OnChange to flip /ready.
func (l *Limits) MemoryGuard() *limits.MemoryGuard {
	if l == nil {
		return nil
	}
	return l.guard
}

// Verifier returns the request-signature verifier, or nil when signing is off. The HTTP
// layer verifies the X-Erlmcp-* headers over the body with it (see VerifyHTTP).
func (l *Limits) Verifier() *limits.Verifier {
	if l == nil {
		return nil
	}
	return l.verifier
}

// AdmitConn reports whether a new connection may be accepted now (false while the memory
// guard is overloaded). One atomic load.
func (l *Limits) AdmitConn() bool { return l == nil || l.guard == nil || l.guard.Admit() }

// VerifyHTTP checks an HTTP request's signature headers (limits.Header*) over its body. It
// returns nil when signing is off.
func (l *Limits) VerifyHTTP(timestamp, nonce, signature string, body []byte) *codec.Error {
	if l == nil || l.verifier == nil {
		return nil
	}
	if err := l.verifier.Verify(l.now(), timestamp, nonce, signature, body); err != nil {
		return signatureError(err)
	}
	return nil
}

func signatureError(err error) *codec.Error {
	return codec.NewError(codec.CodeBadSignature, "%s (request_signing is enabled)", strings.TrimPrefix(err.Error(), "limits: "))
}

// RateLimitError is the JSON-RPC error for a refusal by the rate limiter: -32003 with
// data.retryAfterMs, data.limit and data.scope. HTTP answers it with 429 and Retry-After:
// RetryAfterSeconds(retry).
func RateLimitError(cfg limits.RateLimitConfig, retry time.Duration, scope limits.Scope) *codec.Error {
	limit, unit := cfg.RequestsPerMinute, "per minute"
	switch scope {
	case limits.ScopeBurst:
		limit, unit = cfg.MaxBurst, "per "+cfg.BurstInterval.String()
	case limits.ScopeGlobal:
		limit = cfg.GlobalRequestsPerMinute
	}
	ms := retryMs(retry)
	return codec.NewError(codec.CodeRateLimited, "rate limit exceeded: %d requests %s (rate_limiter.%s); retry in %d ms",
		limit, unit, scope.String(), ms).
		WithData(map[string]any{"retryAfterMs": ms, "limit": limit, "scope": scope.String()})
}

// RetryAfterSeconds is the Retry-After header value for a delay: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int { return int(max(1, math.Ceil(d.Seconds()))) }

func retryMs(d time.Duration) int64 {
	return max(1, int64(math.Ceil(float64(d)/float64(time.Millisecond))))
}

// OverloadedError is the JSON-RPC error while the memory guard refuses new work: -32004,
// HTTP 503.
func (l *Limits) OverloadedError() *codec.Error {
	limit, high, low := l.guard.Limit()
	ms := retryMs(l.guard.RetryAfter())
	return codec.NewError(codec.CodeOverloaded,
		"server is overloaded: %d MiB in use is above the memory guard's high-water mark (%d MiB of memory_guard.memory_limit_bytes %d MiB); new work is refused until it falls below %d MiB; retry in %d ms",
		l.guard.InUse()>>20, high>>20, limit>>20, low>>20, ms).
		WithData(map[string]any{"retryAfterMs": ms, "limit": "memory_guard", "limitBytes": limit})
}

// exemptMethod: allowed while overloaded, without credentials and without signature. ping
// answers liveness; cancellation is a notification and never reaches the middleware.
func exemptMethod(m string) bool { return m == MethodPing }

// Install sets cfg.Admit to l.Admit and appends l's middleware (tool scopes, schema
// checks) to cfg.Middleware: the cheap refusals then happen before params are decoded.
// When auth is required it also sets cfg.ToolAccess, so tools/list shows a caller only
// the tools its scopes allow and a call to another tool is refused before its arguments
// are validated.
// Use either Install or Middleware, not both.
func (l *Limits) Install(cfg *Config) {
	cfg.Admit = l.Admit
	cfg.ToolAccess = l.toolAccess()
	cfg.Middleware = append(cfg.Middleware[:len(cfg.Middleware):len(cfg.Middleware)], l.middleware(false))
}

// Middleware returns the whole layer as one middleware (Admit's checks, then tool scopes
// and the stricter schema checks), for servers that cannot set Config.Admit. Install is
// cheaper: the middleware runs after params are decoded and validated.
func (l *Limits) Middleware() Middleware { return l.middleware(true) }

// Admit is the admission check of one request, cheapest first: memory guard, signature,
// credentials, rate limit. It is the one admission of every transport: the core calls it
// (Config.Admit) for each request before its params are decoded, with what the transport
// knew of the message (r.in): the HTTP transport has checked the Authorization header and
// any signature headers at its edge, before it made a session; line transports (TCP, TLS,
// stdio) carry both in params._meta. What the transport did not check is checked here, so a
// transport that forgets a check is refused, never waved through. Requests already admitted
// (in flight) are never stopped by it; ping is exempt from all but the rate limit.
func (l *Limits) Admit(r *Request) error {
	exempt := exemptMethod(r.Method)
	if l.guard != nil && !exempt && !l.guard.Admit() {
		return l.OverloadedError()
	}
	in := r.in
	var token string
	var sig *limits.SignatureParts
	if (l.authRequired || l.verifier != nil) && len(r.Params) > 0 {
		var err error
		if token, sig, err = readAuthMeta(r.Params); err != nil {
			return err
		}
	}
	if l.verifier != nil && !exempt && (in == nil || !in.signed) {
		if sig == nil {
			return signatureError(fmt.Errorf("request is not signed: sign it with the %s, %s and %s headers over the body (HTTP) or params._meta[%q] with timestamp, nonce and signature (any transport)",
				limits.HeaderTimestamp, limits.HeaderNonce, limits.HeaderSignature, limits.MetaSignature))
		}
		// The method is signed too, so a captured signature cannot be moved to another
		// method: the signed bytes are the method, a newline and the params as sent.
		frame := make([]byte, 0, len(r.Method)+1+len(r.Params))
		frame = append(append(append(frame, r.Method...), '\n'), r.Params...)
		if err := l.verifier.VerifyFrame(l.now(), sig.Timestamp, sig.Nonce, sig.Signature, frame); err != nil {
			return signatureError(err)
		}
	}
	if l.authRequired {
		if err := l.admitPrincipal(r, in, token, exempt); err != nil {
			return err
		}
	}
	if l.rl != nil {
		if ok, retry, scope := l.rl.Check(l.keyFor(r), l.now()); !ok {
			return RateLimitError(l.rl.Config(), retry, scope)
		}
	}
	return nil
}

// admitPrincipal finds who sent r — the transport's principal (HTTP header), a token in
// params._meta, else the session's — and refuses the request when nobody (unless the
// method is exempt), when the credential has expired, or when the session belongs to
// another subject. A session-era session takes the principal of its first credentials:
// it belongs to that subject from then on.
func (l *Limits) admitPrincipal(r *Request, in *inbound, token string, exempt bool) error {
	ss := r.Session
	owner := ss.Principal()
	var p *Principal
	switch {
	case in != nil && in.principal != nil:
		p = in.principal
	case token != "":
		np, err := l.authenticate(context.Background(), token)
		if err != nil {
			return l.authError(err)
		}
		p = np
	default:
		p = owner
	}
	if p == nil {
		if exempt {
			return nil
		}
		return l.authError(limits.ErrNoCredentials)
	}
	if owner != nil && owner != p && owner.Subject != p.Subject {
		return SessionOwnerError(p.Subject)
	}
	if !p.Expires.IsZero() && l.now().After(p.Expires) {
		if p == owner {
			ss.SetPrincipal(nil)
		}
		return l.authError(fmt.Errorf("%w: credential expired at %s; authenticate again", limits.ErrInvalidToken, p.Expires.UTC().Format(time.RFC3339)))
	}
	if !ss.stateless && (owner == nil || p != owner && p.Expires.After(owner.Expires)) {
		ss.SetPrincipal(p) // the session's owner from now on, or the same subject's fresher credential
	}
	r.principal = p
	return nil
}

// SessionOwnerError is the refusal of a request whose credentials name another subject
// than the one the session belongs to: -32007, HTTP 403. The session's subject is not
// told.
func SessionOwnerError(subject string) *codec.Error {
	return codec.NewError(codec.CodeForbidden, "this session belongs to another principal than %q: a session is bound to the subject that opened it; initialize a new session", snippet(subject)).
		WithData(map[string]any{"error": "session_owner_mismatch"})
}

// middleware checks tool scopes and the stricter schema rules of tools/call (which need
// the decoded call), after Admit when admit is set.
func (l *Limits) middleware(admit bool) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, r *Request) (any, error) {
			if admit {
				if err := l.Admit(r); err != nil {
					return nil, err
				}
			}
			if admit && r.Method == MethodToolsList && l.authRequired {
				res, err := next(ctx, r)
				return l.filterToolList(r, res), err
			}
			var cs *callState
			if r.Method == MethodToolsCall {
				cs, _ = r.state.(*callState)
			}
			if cs == nil {
				return next(ctx, r)
			}
			if err := l.ToolAccess(r, cs.entry.tool.Name); err != nil {
				return nil, err
			}
			if l.cfg.RejectUnknownFields || l.cfg.StrictSchema {
				if err := l.checkUnknownFields(cs); err != nil {
					return nil, err
				}
			}
			res, err := next(ctx, r)
			if l.cfg.StrictSchema && err == nil && cs.entry.output != nil {
				if tr, ok := res.(*CallToolResult); ok && !tr.IsError && tr.StructuredContent == nil {
					return nil, codec.NewError(codec.CodeInternalError, "tool %q declares an outputSchema but returned no structuredContent (schema_validator.strict_mode)", cs.entry.tool.Name)
				}
			}
			return res, err
		}
	}
}

// keyFor returns the rate-limit key of r's caller: "sub:" and the principal's subject when
// it authenticated, else (key_by: principal, the default, and ip) "ip:" and the remote
// address — the transport's for this message (HTTP) or the session's peer — so that a
// client gains nothing by opening sessions or connections; else (key_by: session, or no
// address known) "ses:" and the session. The session's key is computed once and kept.
func (l *Limits) keyFor(r *Request) string {
	if p := r.principal; p != nil {
		return "sub:" + p.Subject
	}
	if in := r.in; in != nil && in.remoteIP != "" && !l.cfg.KeyBySession {
		return "ip:" + in.remoteIP
	}
	ss := r.Session
	sec := ss.sec.Load()
	if sec != nil && sec.key != "" {
		return sec.key
	}
	var key string
	switch {
	case sec != nil && sec.principal != nil:
		key = "sub:" + sec.principal.Subject
	case !l.cfg.KeyBySession:
		if ip := remoteIP(ss); ip != "" {
			key = "ip:" + ip
			break
		}
		fallthrough
	default:
		key = "ses:" + ss.Key()
	}
	nsec := &sessionSec{key: key}
	if sec != nil {
		nsec.principal = sec.principal
	}
	ss.sec.CompareAndSwap(sec, nsec)
	return key
}

// strictSchema is a tool's inputSchema parsed for the unknown-field check, kept while the
// tool's registration (entry) is the same.
type strictSchema struct {
	entry  *toolEntry
	schema *jsonschema.Schema
}

// checkUnknownFields refuses argument properties the tool's inputSchema does not declare.
func (l *Limits) checkUnknownFields(cs *callState) error {
	e := cs.entry
	var sch *jsonschema.Schema
	if v, ok := l.schemas.Load(e.tool.Name); ok && v.(*strictSchema).entry == e {
		sch = v.(*strictSchema).schema
	} else {
		sch = new(jsonschema.Schema)
		if err := json.Unmarshal(e.tool.InputSchema, sch); err != nil {
			return nil // the server validated it at registration; nothing stricter to do
		}
		l.schemas.Store(e.tool.Name, &strictSchema{entry: e, schema: sch})
	}
	if len(cs.params.Arguments) == 0 {
		return nil
	}
	var args any
	if err := codec.Unmarshal(cs.params.Arguments, &args); err != nil {
		return nil // validation proper reports it
	}
	if path, ok := unknownField(sch, args, "", l.cfg.StrictSchema, 0); !ok {
		return codec.NewError(codec.CodeInvalidParams, "tool %q: invalid arguments: unknown field %s: the inputSchema does not declare it (schema_validator.reject_unknown_fields)", e.tool.Name, path).
			WithData(map[string]any{"path": path, "reason": "unknown field"})
	}
	return nil
}

// unknownField walks v against s and returns the JSON pointer of the first object member
// that s does not declare. A level that states additionalProperties, or that combines
// schemas (anyOf, oneOf, $ref), is left to the schema itself; allOf branches' properties
// count as declared.
func unknownField(s *jsonschema.Schema, v any, path string, nested bool, depth int) (string, bool) {
	if s == nil || depth > 64 {
		return "", true
	}
	switch v := v.(type) {
	case map[string]any:
		if s.AdditionalProperties != nil || s.UnevaluatedProperties != nil || s.Ref != "" || len(s.AnyOf) > 0 || len(s.OneOf) > 0 {
			return "", true
		}
		props := s.Properties
		if len(s.AllOf) > 0 {
			props = make(map[string]*jsonschema.Schema, len(s.Properties))
			for k, ps := range s.Properties {
				props[k] = ps
			}
			for _, sub := range s.AllOf {
				if sub == nil || sub.AdditionalProperties != nil || sub.Ref != "" {
					return "", true
				}
				for k, ps := range sub.Properties {
					props[k] = ps
				}
			}
		}
		if props == nil && len(s.PatternProperties) == 0 {
			return "", true // an open object schema ({"type":"object"}) declares nothing to compare to
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k]
			if !ok && !matchesPattern(s.PatternProperties, k) {
				return path + "/" + escapePointer(k), false
			}
			if nested && ok {
				if p, ok := unknownField(ps, v[k], path+"/"+escapePointer(k), nested, depth+1); !ok {
					return p, false
				}
			}
		}
	case []any:
		if nested && s.Items != nil {
			for i, it := range v {
				if p, ok := unknownField(s.Items, it, fmt.Sprintf("%s/%d", path, i), nested, depth+1); !ok {
					return p, false
				}
			}
		}
	}
	return "", true
}

func matchesPattern(pp map[string]*jsonschema.Schema, k string) bool {
	for pat := range pp {
		if re, err := regexp.Compile(pat); err == nil && re.MatchString(k) {
			return true
		}
	}
	return false
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(snippet(s))
}
