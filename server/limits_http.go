package server

import (
	"strconv"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/valyala/fasthttp"
)

// HTTP edge of the limits: what the HTTP transport calls before it decodes a body, so that
// refusals cost nothing and carry the right status (413/429/503/401/403) and headers.

// OnHTTPRateLimited sets a function called for every HTTP response refused with 429
// (HTTPRateLimit's plain routes, and MCP requests the core refused), e.g.
// Metrics.AddRateLimited(1). Set it before serving.
func (l *Limits) OnHTTPRateLimited(f func()) { l.onHTTPLimited = f }

// clientIP is the rate-limit key of an HTTP request without a principal. X-Forwarded-For
// is not trusted: a proxy in front should be given its own rate limits.
func clientIP(ctx *fasthttp.RequestCtx) string { return ctx.RemoteIP().String() }

// writeHTTPError answers with status and a JSON-RPC error body (null id).
func writeHTTPError(ctx *fasthttp.RequestCtx, status int, e *codec.Error) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(codec.AppendError(nil, codec.NullID, e))
}

// refuseRateLimited writes 429 with Retry-After and the -32003 body.
func (l *Limits) refuseRateLimited(ctx *fasthttp.RequestCtx, e *codec.Error, retrySeconds int) {
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(retrySeconds))
	writeHTTPError(ctx, fasthttp.StatusTooManyRequests, e)
	if l.onHTTPLimited != nil {
		l.onHTTPLimited()
	}
}

// HTTPRateLimit wraps a plain HTTP handler (/api/ping, /health) with the per-client rate
// limit keyed by remote IP: over the limit it answers 429 with Retry-After (whole seconds)
// and a JSON-RPC -32003 body with data.retryAfterMs. With rate limiting off it returns next.
// This is what makes the seed's check hold:
//
//	for i in {1..1100}; do curl -s -o /dev/null -w '%{http_code}\n' http://localhost:8080/api/ping; done | sort | uniq -c
//	   1000 200
//	    100 429
func (l *Limits) HTTPRateLimit(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	if l == nil || l.rl == nil {
		return next
	}
	return func(ctx *fasthttp.RequestCtx) {
		ok, retry, scope := l.rl.Check(clientIP(ctx), l.now())
		if !ok {
			l.refuseRateLimited(ctx, RateLimitError(l.rl.Config(), retry, scope), RetryAfterSeconds(retry))
			return
		}
		next(ctx)
	}
}

// httpEdge is the HTTP transport's part of admission for a request on an MCP endpoint
// (POST, GET and DELETE on /mcp; the legacy /sse and /message), run before the body is
// decoded and before any session is made, so that a refused client costs nothing and gets
// no session: the memory guard (503 + Retry-After), the bearer token of the Authorization
// header (401 + WWW-Authenticate: Bearer resource_metadata=…, RFC 6750 and 9728) and the
// signature headers when present (401). What it learnt goes into in for the core's
// Admit, which checks the rest for every transport alike (a signature in params._meta
// when there were no headers, the rate limit, session ownership). When it returns false
// the refusal is written and the caller must return.
func (l *Limits) httpEdge(ctx *fasthttp.RequestCtx, mcpPath string, in *inbound) bool {
	in.remoteIP = clientIP(ctx)
	if l == nil {
		return true
	}
	if l.guard != nil && !l.guard.Admit() {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(l.guard.RetryAfter())))
		writeHTTPError(ctx, fasthttp.StatusServiceUnavailable, l.OverloadedError())
		return false
	}
	if l.authRequired {
		tok := limits.BearerToken(b2str(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)))
		p, err := l.Authenticate(ctx, tok)
		if err != nil {
			l.refuseUnauthorized(ctx, mcpPath, err)
			return false
		}
		in.principal = p
	}
	if l.verifier != nil && ctx.IsPost() {
		h := &ctx.Request.Header
		ts, nonce, sig := h.Peek(limits.HeaderTimestamp), h.Peek(limits.HeaderNonce), h.Peek(limits.HeaderSignature)
		if ts != nil || nonce != nil || sig != nil {
			if e := l.VerifyHTTP(string(ts), string(nonce), string(sig), ctx.PostBody()); e != nil {
				writeHTTPError(ctx, fasthttp.StatusUnauthorized, e)
				return false
			}
			in.signed = true
		}
	}
	return true
}

// refuseUnauthorized writes the 401 of a request without good credentials.
func (l *Limits) refuseUnauthorized(ctx *fasthttp.RequestCtx, mcpPath string, err error) {
	md := l.metadataURL(ctx, mcpPath)
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, wwwAuthenticate(md, err, nil))
	writeHTTPError(ctx, fasthttp.StatusUnauthorized, l.authErrorAt(err, md))
}

// metadataURL is the RFC 9728 metadata URL clients are pointed to: the one of the
// configured auth.resource, else the well-known URL of this request's own endpoint (scheme
// and Host as the client used them), so discovery works without configuration.
func (l *Limits) metadataURL(ctx *fasthttp.RequestCtx, mcpPath string) string {
	if l.resourceMetadata != "" {
		return l.resourceMetadata
	}
	return wellKnownURL(requestResource(ctx, mcpPath))
}

// requestResource is this request's MCP endpoint URL (scheme://Host/path).
func requestResource(ctx *fasthttp.RequestCtx, mcpPath string) string {
	scheme := "http"
	if ctx.IsTLS() {
		scheme = "https"
	}
	return scheme + "://" + string(ctx.Host()) + mcpPath
}

// refuseReply sets the status and authentication headers of a Streamable HTTP response
// that carries one JSON-RPC error from the core's admission (code), as the MCP
// authorization spec and RFC 6750 ask: 401 with WWW-Authenticate for missing or bad
// credentials, 403 with error="insufficient_scope" and the scope needed, 429 and 503 with
// Retry-After. reply is the error message, read here only on these rare paths.
func (l *Limits) refuseReply(ctx *fasthttp.RequestCtx, mcpPath string, code codec.Code, reply []byte) {
	var msg struct {
		Error struct {
			Data struct {
				RetryAfterMs   int64    `json:"retryAfterMs"`
				RequiredScopes []string `json:"requiredScopes"`
				Error          string   `json:"error"`
			} `json:"data"`
		} `json:"error"`
	}
	_ = codec.Unmarshal(reply, &msg)
	d := msg.Error.Data
	switch code {
	case codec.CodeUnauthorized:
		if l != nil && l.authRequired {
			ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, wwwAuthenticate(l.metadataURL(ctx, mcpPath), limits.ErrInvalidToken, nil))
		}
	case codec.CodeForbidden:
		if l != nil && l.authRequired && len(d.RequiredScopes) > 0 {
			ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, wwwAuthenticate(l.metadataURL(ctx, mcpPath), limits.ErrInsufficientScope, d.RequiredScopes))
		}
	case codec.CodeRateLimited, codec.CodeOverloaded:
		if d.RetryAfterMs > 0 {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(time.Duration(d.RetryAfterMs)*time.Millisecond)))
		}
	}
}

// ServeProtectedResourceMetadata serves the RFC 9728 document of the MCP endpoint at
// mcpPath; the HTTP transport mounts it at /.well-known/oauth-protected-resource and at
// that path plus mcpPath when auth is on. Without auth.resource configured, the resource
// is this request's own endpoint URL.
func (l *Limits) ServeProtectedResourceMetadata(ctx *fasthttp.RequestCtx, mcpPath string) {
	md := l.ProtectedResourceMetadata()
	if md == nil {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	if md.Resource == "" {
		c := *md
		c.Resource = requestResource(ctx, mcpPath)
		md = &c
	}
	ctx.Response.Header.Set("Cache-Control", "max-age=3600")
	b, err := codec.Marshal(md)
	if err != nil {
		ctx.Error("internal error", fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
