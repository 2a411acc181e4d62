package server

import (
	"strconv"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/valyala/fasthttp"
)

// HTTP edge of the limits: what the HTTP transport calls before it decodes a body, so that
// refusals cost nothing and carry the right status (413/429/503/401/403) and headers.

// OnHTTPRateLimited sets a function called for every request refused with 429 at the HTTP
// edge (AdmitHTTP, HTTPRateLimit), e.g. Metrics.AddRateLimited(1): those requests never
// reach the server's Observer. Set it before serving.
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

// AdmitHTTP runs the edge checks for an MCP request (POST/GET/DELETE on /mcp) before its
// body is decoded: memory guard (503 + Retry-After), request signature headers (401),
// bearer token (401 with WWW-Authenticate: Bearer resource_metadata=…) and the rate limit
// keyed by the principal's subject or else the remote IP (429 + Retry-After). When it
// returns ok=false the response is written and the caller must return; otherwise p (nil
// without auth) should be given to the request's session with SetPrincipal.
//
// Admit and the middleware still run for every JSON-RPC request on the session (memory
// guard, scopes, schemas), but once AdmitHTTP is in use they no longer count HTTP requests
// against the rate limit, so each is counted once.
func (l *Limits) AdmitHTTP(ctx *fasthttp.RequestCtx) (p *Principal, ok bool) {
	if l == nil {
		return nil, true
	}
	if !l.httpEdge.Load() {
		l.httpEdge.Store(true)
	}
	if l.guard != nil && !l.guard.Admit() {
		e := l.OverloadedError()
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(l.guard.RetryAfter())))
		writeHTTPError(ctx, fasthttp.StatusServiceUnavailable, e)
		return nil, false
	}
	if l.verifier != nil && ctx.IsPost() {
		h := &ctx.Request.Header
		if e := l.VerifyHTTP(string(h.Peek(limits.HeaderTimestamp)), string(h.Peek(limits.HeaderNonce)),
			string(h.Peek(limits.HeaderSignature)), ctx.PostBody()); e != nil {
			writeHTTPError(ctx, fasthttp.StatusUnauthorized, e)
			return nil, false
		}
	}
	if l.authRequired {
		tok := limits.BearerToken(string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)))
		var err error
		if p, err = l.Authenticate(ctx, tok); err != nil {
			ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, l.WWWAuthenticate(err))
			writeHTTPError(ctx, fasthttp.StatusUnauthorized, l.authError(err))
			return nil, false
		}
	}
	if l.rl != nil {
		key := clientIP(ctx)
		if p != nil {
			key = "sub:" + p.Subject
		}
		if ok, retry, scope := l.rl.Check(key, l.now()); !ok {
			l.refuseRateLimited(ctx, RateLimitError(l.rl.Config(), retry, scope), RetryAfterSeconds(retry))
			return nil, false
		}
	}
	return p, true
}

// ServeProtectedResourceMetadata serves the RFC 9728 document; mount it at
// /.well-known/oauth-protected-resource (and that path plus the resource's path). 404 when
// auth is off.
func (l *Limits) ServeProtectedResourceMetadata(ctx *fasthttp.RequestCtx) {
	md := l.ProtectedResourceMetadata()
	if md == nil {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	b, err := codec.Marshal(md)
	if err != nil {
		ctx.Error("internal error", fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// InsufficientScope writes 403 with WWW-Authenticate error="insufficient_scope" for a
// tool-scope refusal (-32007) when the HTTP layer answers a single request.
func (l *Limits) InsufficientScope(ctx *fasthttp.RequestCtx, e *codec.Error) {
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, l.WWWAuthenticate(limits.ErrInsufficientScope))
	writeHTTPError(ctx, fasthttp.StatusForbidden, e)
}
