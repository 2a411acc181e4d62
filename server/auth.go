package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/limits"
)

// Principal is an authenticated caller (limits.Principal): subject, scopes, method.
type Principal = limits.Principal

// MetaAuthorization is the params._meta member that carries a bearer token on transports
// without headers (TCP, stdio): "_meta":{"io.erlmcp/authorization":"Bearer <token>"}. It is
// read on initialize (the session keeps the principal) and on any request of the stateless
// era. The token is never logged, echoed or passed on.
const MetaAuthorization = "io.erlmcp/authorization"

// sessionSec is what the limits keep per session; immutable once stored.
type sessionSec struct {
	principal *Principal
	key       string // rate-limit key, computed on first use
}

// Principal returns who authenticated on the session (API key, JWT or client certificate),
// or nil.
func (ss *Session) Principal() *Principal {
	if sec := ss.sec.Load(); sec != nil {
		return sec.principal
	}
	return nil
}

// SetPrincipal records who authenticated on the session; transports call it after checking
// credentials (the HTTP layer with the Authorization header, TLS with the client
// certificate). Rate limits are then keyed by p.Subject and tool scopes checked against
// p.Scopes.
func (ss *Session) SetPrincipal(p *Principal) { ss.sec.Store(&sessionSec{principal: p}) }

// authMeta is the part of params._meta the auth middleware reads.
type authMeta struct {
	Meta struct {
		Authorization string `json:"io.erlmcp/authorization"`
		Signature     *struct {
			Timestamp string `json:"timestamp"`
			Nonce     string `json:"nonce"`
			Signature string `json:"signature"`
		} `json:"io.erlmcp/signature"`
	} `json:"_meta"`
}

// readAuthMeta pulls the token and signature out of params._meta, only when present (a
// bytes.Contains guards the decode, so ordinary requests pay nothing).
func readAuthMeta(params []byte) (token string, sig *limits.SignatureParts, err error) {
	hasTok := bytes.Contains(params, []byte(MetaAuthorization))
	hasSig := bytes.Contains(params, []byte(limits.MetaSignature))
	if !hasTok && !hasSig {
		return "", nil, nil
	}
	var am authMeta
	if err := codec.Unmarshal(params, &am); err != nil {
		return "", nil, codec.NewError(codec.CodeInvalidParams, "params._meta: %v", err)
	}
	if t := am.Meta.Authorization; t != "" {
		token = limits.BearerToken(t)
		if token == "" {
			token = strings.TrimSpace(t)
		}
	}
	if s := am.Meta.Signature; s != nil {
		sig = &limits.SignatureParts{Timestamp: s.Timestamp, Nonce: s.Nonce, Signature: s.Signature}
	}
	return token, sig, nil
}

// authError turns an authentication failure into the JSON-RPC error sent: -32006 with the
// reason (never the token) and, when known, where to find the authorization server.
func (l *Limits) authError(err error) *codec.Error { return l.authErrorAt(err, l.resourceMetadata) }

// authErrorAt is authError pointing at the metadata URL md.
func (l *Limits) authErrorAt(err error, md string) *codec.Error {
	msg := "authentication required: send a bearer token (HTTP Authorization header; TCP/stdio params._meta[\"" + MetaAuthorization + "\"])"
	if !errors.Is(err, limits.ErrNoCredentials) {
		msg = strings.TrimPrefix(err.Error(), "limits: ")
	}
	e := codec.NewError(codec.CodeUnauthorized, "%s", msg)
	if md != "" {
		e = e.WithData(map[string]any{"resource_metadata": md})
	}
	return e
}

// authenticate checks a bearer token now.
func (l *Limits) authenticate(ctx context.Context, token string) (*Principal, error) {
	if l.auth == nil {
		return nil, limits.ErrNoCredentials
	}
	return l.auth.Authenticate(ctx, token, time.Now())
}

// Authenticate checks a bearer token (HTTP: limits.BearerToken of the Authorization
// header). It is what the HTTP transport calls per request; on success it should
// SetPrincipal on the request's session. The error wraps limits.ErrNoCredentials or
// limits.ErrInvalidToken; WWWAuthenticate gives the header to send with the 401.
func (l *Limits) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" && l.auth == nil {
		return nil, limits.ErrNoCredentials
	}
	return l.authenticate(ctx, token)
}

// AuthRequired reports whether requests must carry credentials (auth.enabled).
func (l *Limits) AuthRequired() bool { return l != nil && l.authRequired }

// WWWAuthenticate returns the WWW-Authenticate value for a 401 (or 403 with
// insufficient_scope) per RFC 6750 and RFC 9728: Bearer with resource_metadata (when
// auth.resource is configured; the HTTP transport derives it from the request otherwise).
func (l *Limits) WWWAuthenticate(err error) string {
	return wwwAuthenticate(l.resourceMetadata, err, nil)
}

// wwwAuthenticate builds the challenge: resource_metadata md, the error of err (none when
// the request carried no credentials, as RFC 6750 3.1 asks) and, for insufficient_scope,
// the scope needed.
func wwwAuthenticate(md string, err error, scopes []string) string {
	var b strings.Builder
	b.WriteString(`Bearer`)
	sep := " "
	if md != "" {
		b.WriteString(sep + `resource_metadata="` + md + `"`)
		sep = ", "
	}
	switch {
	case errors.Is(err, limits.ErrInsufficientScope):
		b.WriteString(sep + `error="insufficient_scope"`)
		if len(scopes) > 0 {
			b.WriteString(`, scope="` + strings.Join(scopes, " ") + `"`)
		}
	case errors.Is(err, limits.ErrInvalidToken):
		b.WriteString(sep + `error="invalid_token"`)
	}
	return b.String()
}

// ProtectedResourceMetadata is the RFC 9728 document served at
// /.well-known/oauth-protected-resource.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
}

// ProtectedResourceMetadata returns the document the HTTP transport serves at
// /.well-known/oauth-protected-resource (nil when auth is off).
func (l *Limits) ProtectedResourceMetadata() *ProtectedResourceMetadata {
	if l == nil || !l.authRequired {
		return nil
	}
	return l.prm
}

// principalFromCert makes the principal of a client that presented a verified certificate:
// the subject is the first DNS or URI SAN, else the CN; scopes are auth.mtls_scopes.
func principalFromCert(cs tls.ConnectionState, scopes []string) *Principal {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	c := cs.VerifiedChains[0][0]
	return &Principal{Subject: certSubject(c), Scopes: scopes, Method: "mtls", Expires: c.NotAfter}
}

func certSubject(c *x509.Certificate) string {
	switch {
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	}
	return c.Subject.CommonName
}

// remoteIP returns the host part of a session's remote address, or "".
func remoteIP(ss *Session) string {
	ra, ok := ss.out.(interface{ RemoteAddr() net.Addr })
	if !ok {
		return ""
	}
	a := ra.RemoteAddr()
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
