package server

import (
	"bufio"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/valyala/fasthttp"
)

// The HTTP+SSE transport of protocol version 2024-11-05, for old clients: GET /sse opens
// the session's stream and announces, in an `endpoint` event, the URL to POST messages to;
// every reply and notification then travels on that stream. The session lives as long as
// the stream.

func (h *HTTP) serveLegacyStream(ctx *fasthttp.RequestCtx) {
	if !h.checkOrigin(ctx) {
		ctx.Error("Origin or Host not allowed", fasthttp.StatusForbidden)
		return
	}
	if !ctx.IsGet() {
		ctx.Response.Header.Set("Allow", "GET")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	var edge inbound
	if !h.cfg.Limits.httpEdge(ctx, h.cfg.Path, &edge) {
		return // refused before any session exists
	}
	hs := h.openSession(ctx, codec.NullID, &edge)
	if hs == nil {
		return
	}
	hs.active.Add(1)
	endpoint := "/message?sessionId=" + hs.ss.ID()
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache, no-transform")
	solo := hs.standaloneStream()
	gen := solo.attach()
	h.streams.Add(1)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.streams.Add(-1)
		defer hs.end()
		defer hs.active.Add(-1)
		if _, err := w.WriteString("event: endpoint\ndata: " + endpoint + "\n\n"); err != nil || w.Flush() != nil {
			return
		}
		sw := &sseWriter{w: w, keepalive: h.cfg.SSEKeepAlive, stop: hs.endedChan(), shutdown: h.stop}
		sw.follow(solo, gen, 0)
	})
}

func (h *HTTP) serveLegacyPost(ctx *fasthttp.RequestCtx) {
	if !h.checkOrigin(ctx) {
		ctx.Error("Origin or Host not allowed", fasthttp.StatusForbidden)
		return
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	edge := new(inbound) // kept by the requests of the frame, which may run on workers
	if !h.cfg.Limits.httpEdge(ctx, h.cfg.Path, edge) {
		return
	}
	id := string(ctx.QueryArgs().Peek("sessionId"))
	hs := h.lookup(id)
	if hs == nil {
		h.writeError(ctx, fasthttp.StatusNotFound, codec.NullID, codec.NewError(codec.CodeSessionNotFound, "session %q not found; open GET /sse first", snippet(id)))
		return
	}
	if owner := hs.ss.Principal(); owner != nil && edge.principal != nil && owner.Subject != edge.principal.Subject {
		h.writeError(ctx, fasthttp.StatusForbidden, codec.NullID, SessionOwnerError(edge.principal.Subject))
		return
	}
	hs.touch()
	h.srv.handleFrame(hs.ss, ctx.PostBody(), hs.standaloneStream(), edge)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
}
