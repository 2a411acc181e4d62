package server

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/valyala/fasthttp"
)

// HTTPConfig configures the HTTP side of the main port: the MCP Streamable HTTP endpoint
// (both eras), the legacy HTTP+SSE endpoints and any other routes mounted with Handle.
// The zero value of every field is its documented default.
type HTTPConfig struct {
	// Path is the Streamable HTTP endpoint. Default "/mcp".
	Path string
	// AllowedOrigins lists Origin values accepted besides loopback ones (exact match,
	// e.g. "https://app.example.com"); "*" accepts any.
	AllowedOrigins []string
	// AllowedHosts lists Host values (without port) accepted besides loopback ones when
	// DNS-rebinding protection is on.
	AllowedHosts []string
	// DNSRebindingProtection refuses (403) requests whose Host or Origin is not loopback
	// or allowed. The daemon turns it on when it binds a loopback address.
	DNSRebindingProtection bool
	// MaxBody bounds a request body; larger ones get 413 with a JSON-RPC error.
	// Default 10 MiB.
	MaxBody int
	// SessionIdleTimeout ends sessions without traffic or open streams for this long.
	// Default 10 minutes; negative never.
	SessionIdleTimeout time.Duration
	// EventStoreSize bounds the events kept per stream for Last-Event-ID replay.
	// Default 256.
	EventStoreSize int
	// Stateless issues no Mcp-Session-Id: every session-era request is served on a
	// throwaway session. The 2026-07-28 era is stateless whatever this says.
	Stateless bool
	// JSONResponse always answers POSTs with application/json (no SSE): notifications
	// made while serving are dropped and server→client requests fail.
	JSONResponse bool
	// SSERetry is the retry hint of priming events and of streams a handler closes.
	// Default 1s.
	SSERetry time.Duration
	// SSEKeepAlive is the interval of comment lines on idle streams, which also finds dead
	// peers. Default 15s.
	SSEKeepAlive time.Duration
	// LegacySSE serves the 2024-11-05 HTTP+SSE transport at /sse and /message.
	LegacySSE bool
	// ReadTimeout and IdleTimeout bound reading a request and keep-alive idleness.
	// Defaults 30s and 2 minutes.
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// Limits is the admission layer whose HTTP edge runs before a request's body is
	// decoded and before any session is made: the memory guard, the bearer token of the
	// Authorization header and the signature headers (Limits.httpEdge); the core's
	// Config.Admit (Limits.Admit) checks the rest. With auth on, the RFC 9728 metadata is
	// served at /.well-known/oauth-protected-resource (and that path plus Path). Nil: no
	// edge checks (a server without Limits).
	Limits *Limits
	// ReleaseIdleBuffers makes a keep-alive connection waiting for its next request keep
	// no request context and no read/write buffers (fasthttp's ReduceMemoryUsage): ~10 KB
	// less per idle connection. The daemon sets it when hibernation is enabled.
	ReleaseIdleBuffers bool
}

func (c *HTTPConfig) setDefaults() {
	if c.Path == "" {
		c.Path = "/mcp"
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 10 << 20
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = 10 * time.Minute
	}
	if c.EventStoreSize <= 0 {
		c.EventStoreSize = 256
	}
	if c.SSERetry <= 0 {
		c.SSERetry = time.Second
	}
	if c.SSEKeepAlive <= 0 {
		c.SSEKeepAlive = 15 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
}

// HTTP serves MCP over HTTP on connections handed to it (ServeConn) by the main port's
// sniffing listener, or by any net.Listener (Serve). Routes other than the MCP endpoints
// are mounted with Handle. Safe for concurrent use.
type HTTP struct {
	srv  *Server
	cfg  HTTPConfig
	fast *fasthttp.Server

	routes atomic.Pointer[map[string]fasthttp.RequestHandler]
	muxMu  sync.Mutex

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	streams  atomic.Int64 // open SSE responses
}

// NewHTTP returns the HTTP side of srv, configured by cfg (copied). It starts the session
// reaper; Close stops it.
func (s *Server) NewHTTP(cfg HTTPConfig) *HTTP {
	cfg.setDefaults()
	h := &HTTP{srv: s, cfg: cfg, stop: make(chan struct{})}
	empty := map[string]fasthttp.RequestHandler{}
	h.routes.Store(&empty)
	h.fast = &fasthttp.Server{
		Handler:               h.serve,
		ErrorHandler:          h.serveError,
		MaxRequestBodySize:    cfg.MaxBody,
		ReadTimeout:           cfg.ReadTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		ReduceMemoryUsage:     cfg.ReleaseIdleBuffers,
		Logger:                fastLogger{s.log},
	}
	if cfg.SessionIdleTimeout > 0 {
		h.wg.Add(1)
		go h.reap()
	}
	return h
}

type fastLogger struct {
	log interface{ Debug(string, ...any) }
}

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", strings.TrimSpace(format), "args", args)
}

// Handle mounts h at the exact path (e.g. "/health"). The MCP paths cannot be replaced.
// Safe to call at any time; requests already routed are not affected.
func (h *HTTP) Handle(path string, fn fasthttp.RequestHandler) {
	h.muxMu.Lock()
	defer h.muxMu.Unlock()
	old := *h.routes.Load()
	m := make(map[string]fasthttp.RequestHandler, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[path] = fn
	h.routes.Store(&m)
}

// ServeConn serves HTTP on c until it closes; it is the loop.Config.HTTP hook.
func (h *HTTP) ServeConn(c net.Conn) {
	_ = h.fast.ServeConn(c)
}

// Serve serves HTTP on ln until it is closed (tests, a dedicated HTTP port).
func (h *HTTP) Serve(ln net.Listener) error { return h.fast.Serve(ln) }

// Close ends every HTTP session and stream and stops the reaper. Idempotent.
func (h *HTTP) Close() {
	h.stopOnce.Do(func() {
		close(h.stop)
		h.srv.EachSession(func(ss *Session) {
			if hs, _ := ss.Value().(*httpSession); hs != nil {
				hs.end()
			}
		})
		h.wg.Wait()
	})
}

// Handler returns the fasthttp handler (all routes), for mounting elsewhere.
func (h *HTTP) Handler() fasthttp.RequestHandler { return h.serve }

func (h *HTTP) serve(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case string(path) == h.cfg.Path:
		h.serveMCP(ctx)
		return
	case h.cfg.LegacySSE && string(path) == "/sse":
		h.serveLegacyStream(ctx)
		return
	case h.cfg.LegacySSE && string(path) == "/message":
		h.serveLegacyPost(ctx)
		return
	}
	if fn := (*h.routes.Load())[string(path)]; fn != nil {
		fn(ctx)
		return
	}
	if h.cfg.Limits.AuthRequired() && (string(path) == wellKnownPRM || string(path) == wellKnownPRM+h.cfg.Path) {
		h.cfg.Limits.ServeProtectedResourceMetadata(ctx, h.cfg.Path)
		return
	}
	ctx.Error("not found", fasthttp.StatusNotFound)
}

// wellKnownPRM is where RFC 9728 protected resource metadata is served (also with the MCP
// path appended, as the MCP authorization spec's discovery tries first).
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// serveError answers requests fasthttp could not read: an oversize body gets 413 with a
// JSON-RPC error body, so MCP clients see why.
func (h *HTTP) serveError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		h.writeError(ctx, fasthttp.StatusRequestEntityTooLarge, codec.NullID, codec.NewError(codec.CodeMessageTooLarge,
			"request body exceeds %d bytes (transports.http.max_body, default message_size.max_request_size)", h.cfg.MaxBody).
			WithData(map[string]any{"limit": h.cfg.MaxBody}))
		ctx.SetConnectionClose()
		return
	}
	ctx.Error("bad request: "+err.Error(), fasthttp.StatusBadRequest)
}

// writeError answers with one JSON-RPC error as application/json.
func (h *HTTP) writeError(ctx *fasthttp.RequestCtx, status int, id codec.ID, e *codec.Error) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(codec.AppendError(nil, id, e))
}

// Header names of the Streamable HTTP transport.
const (
	hdrSessionID   = "Mcp-Session-Id"
	hdrProtocol    = "Mcp-Protocol-Version"
	hdrLastEventID = "Last-Event-Id"
	hdrMethod      = "Mcp-Method"
	hdrName        = "Mcp-Name"
)

// checkOrigin applies DNS-rebinding protection and the Origin allow-list.
func (h *HTTP) checkOrigin(ctx *fasthttp.RequestCtx) bool {
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin != "" && h.originAllowed(origin) {
		return true
	}
	if h.cfg.DNSRebindingProtection {
		if !h.hostAllowed(b2str(ctx.Host())) { // not kept: no copy
			return false
		}
		if origin != "" {
			return isLoopbackOrigin(origin)
		}
		return true
	}
	return origin == "" || len(h.cfg.AllowedOrigins) == 0 || h.originAllowed(origin)
}

func (h *HTTP) originAllowed(origin string) bool {
	for _, o := range h.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (h *HTTP) hostAllowed(host string) bool {
	name := stripPort(host)
	if isLoopbackName(name) {
		return true
	}
	for _, a := range h.cfg.AllowedHosts {
		if strings.EqualFold(a, name) || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

func isLoopbackOrigin(origin string) bool {
	i := strings.Index(origin, "://")
	if i < 0 {
		return false
	}
	scheme := strings.ToLower(origin[:i])
	if scheme != "http" && scheme != "https" {
		return false
	}
	return isLoopbackName(stripPort(origin[i+3:]))
}

func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		return host[:i]
	}
	return host
}

func isLoopbackName(name string) bool {
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// accepts reports which response kinds the Accept header allows.
func accepts(ctx *fasthttp.RequestCtx) (json, sse bool) {
	a := ctx.Request.Header.Peek("Accept")
	if len(a) == 0 {
		return true, true // absent Accept means anything (RFC 9110)
	}
	for len(a) > 0 { // the comma-separated media ranges, without allocating
		part := a
		if i := bytes.IndexByte(a, ','); i >= 0 {
			part, a = a[:i], a[i+1:]
		} else {
			a = nil
		}
		mt := part
		if i := bytes.IndexByte(mt, ';'); i >= 0 {
			mt = mt[:i]
		}
		switch mt = bytes.TrimSpace(mt); {
		case asciiEqualFold(mt, "application/json"):
			json = true
		case asciiEqualFold(mt, "text/event-stream"):
			sse = true
		case asciiEqualFold(mt, "*/*"):
			json, sse = true, true
		case asciiEqualFold(mt, "application/*"):
			json = true
		case asciiEqualFold(mt, "text/*"):
			sse = true
		}
	}
	return json, sse
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring the case of
// ASCII letters only (strings.ToLower also folds non-ASCII letters, none of which can
// match s).
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// serveMCP is the Streamable HTTP endpoint.
func (h *HTTP) serveMCP(ctx *fasthttp.RequestCtx) {
	if !h.checkOrigin(ctx) {
		h.writeError(ctx, fasthttp.StatusForbidden, codec.NullID, codec.NewError(codec.CodeForbidden,
			"Origin or Host not allowed (DNS-rebinding protection; see transports.http.allowed_origins)"))
		return
	}
	switch string(ctx.Method()) {
	case fasthttp.MethodPost:
		h.servePost(ctx)
	case fasthttp.MethodGet:
		h.serveGet(ctx)
	case fasthttp.MethodDelete:
		h.serveDelete(ctx)
	case fasthttp.MethodOptions:
		ctx.Response.Header.Set("Allow", "GET, POST, DELETE, OPTIONS")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		ctx.Response.Header.Set("Allow", "GET, POST, DELETE, OPTIONS")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
	}
}

// httpSession is the HTTP state of a session-era session (Session.Value): its streams.
// An idle session (initialized, no stream open) is this struct and its Session alone:
// the standalone stream, the POST streams and the end channel are made on first use.
type httpSession struct {
	h    *HTTP
	ss   *Session
	solo atomic.Pointer[sseStream] // id 0: unsolicited messages, the GET stream (standaloneStream)

	mu       sync.Mutex
	posts    *postStreams  // POST streams kept for resumption; nil until the first
	endedCh  chan struct{} // closed by end; nil until a stream waits on it (endedChan)
	ended    bool
	active   atomic.Int32 // requests and responses in progress
	lastUsed atomic.Int64 // unix nanoseconds
}

// postStreams are the POST streams a session keeps for Last-Event-ID replay.
type postStreams struct {
	byID   map[uint64]*sseStream
	order  []uint64 // their ids, oldest first
	nextID uint64
}

// maxKeptStreams bounds the POST streams a session keeps for Last-Event-ID replay.
const maxKeptStreams = 16

// newSessionFor makes a session with id, counted against the session caps under
// principalKey (OpenSession); a shared one (a Streamable HTTP session, not a legacy
// HTTP+SSE one) is shared with the other nodes in cluster mode.
func (h *HTTP) newSessionFor(transport, id string, shared bool, principalKey string) (*httpSession, error) {
	hs := &httpSession{h: h}
	hs.touch()
	var out Output = (*standaloneOutput)(hs)
	if cn := h.srv.cluster; cn != nil && shared {
		out = cn.output(hs, id)
	}
	ss, err := h.srv.OpenSession(transport, id, principalKey, out)
	if err != nil {
		return nil, err
	}
	hs.ss = ss
	hs.ss.SetValue(hs)
	return hs, nil
}

// standaloneStream returns the session's standalone stream (id 0), making it on first use:
// the first unsolicited message or GET. One made after end is born finished.
func (hs *httpSession) standaloneStream() *sseStream {
	if st := hs.solo.Load(); st != nil {
		return st
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if st := hs.solo.Load(); st != nil {
		return st
	}
	st := newSSEStream(0, hs.h.cfg.EventStoreSize)
	if hs.ended {
		st.finish()
	}
	hs.solo.Store(st)
	return st
}

// endedChan returns a channel closed when the session ends, making it on first use.
func (hs *httpSession) endedChan() <-chan struct{} {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.endedCh == nil {
		hs.endedCh = make(chan struct{})
		if hs.ended {
			close(hs.endedCh)
		}
	}
	return hs.endedCh
}

// standaloneOutput is the Output of a session's unsolicited messages: its standalone
// stream, made when the first message comes.
type standaloneOutput httpSession

func (o *standaloneOutput) Reply(msg []byte) { (*httpSession)(o).standaloneStream().add(msg) }
func (o *standaloneOutput) Send(msg []byte) error {
	(*httpSession)(o).standaloneStream().add(msg)
	return nil
}
func (o *standaloneOutput) Hold()    {}
func (o *standaloneOutput) Release() {}

func (hs *httpSession) touch() { hs.lastUsed.Store(time.Now().UnixNano()) }

// lookup finds the HTTP session of an Mcp-Session-Id.
func (h *HTTP) lookup(id string) *httpSession {
	ss := h.srv.Session(id)
	if ss == nil || ss.Closed() {
		return nil
	}
	hs, _ := ss.Value().(*httpSession)
	return hs
}

// newStream opens a POST stream kept for resumption.
func (hs *httpSession) newStream() *sseStream {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	ps := hs.posts
	if ps == nil {
		ps = &postStreams{}
		hs.posts = ps
	}
	ps.nextID++
	st := newSSEStream(ps.nextID, hs.h.cfg.EventStoreSize)
	if ps.byID == nil {
		ps.byID = make(map[uint64]*sseStream)
	}
	ps.byID[st.id] = st
	ps.order = append(ps.order, st.id)
	// Forget streams that are complete and delivered, then the oldest beyond the bound.
	kept := ps.order[:0]
	for _, id := range ps.order {
		if s := ps.byID[id]; s != nil && s != st && s.finished() {
			delete(ps.byID, id)
			continue
		}
		kept = append(kept, id)
	}
	ps.order = kept
	for len(ps.order) > maxKeptStreams {
		delete(ps.byID, ps.order[0])
		ps.order = ps.order[1:]
	}
	return st
}

func (hs *httpSession) stream(id uint64) *sseStream {
	if id == 0 {
		return hs.standaloneStream()
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.posts == nil {
		return nil
	}
	return hs.posts.byID[id]
}

// end closes the session and its streams. Idempotent.
func (hs *httpSession) end() {
	hs.mu.Lock()
	if hs.ended {
		hs.mu.Unlock()
		return
	}
	hs.ended = true
	var streams map[uint64]*sseStream
	if hs.posts != nil {
		streams = hs.posts.byID
		hs.posts.byID, hs.posts.order = nil, nil
	}
	if hs.endedCh != nil {
		close(hs.endedCh)
	}
	hs.mu.Unlock()
	hs.ss.Close()
	if st := hs.solo.Load(); st != nil {
		st.finish()
	}
	for _, st := range streams {
		st.finish()
	}
}

// reap ends sessions idle longer than SessionIdleTimeout. One goroutine for all
// sessions; an idle session costs no goroutine and no timer.
func (h *HTTP) reap() {
	defer h.wg.Done()
	every := h.cfg.SessionIdleTimeout / 4
	every = min(max(every, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			limit := now.Add(-h.cfg.SessionIdleTimeout).UnixNano()
			var idle []*httpSession
			h.srv.EachSession(func(ss *Session) {
				if hs, _ := ss.Value().(*httpSession); hs != nil && hs.h == h && hs.active.Load() == 0 && hs.lastUsed.Load() < limit {
					idle = append(idle, hs)
				}
			})
			for _, hs := range idle {
				hs.end()
			}
		}
	}
}

// sessionFor resolves the session of a session-era request that is not initialize,
// sent with the credentials of p (nil without auth). It writes the error response and
// returns nil when there is none, or when the session belongs to another subject (403: a
// session is bound to the subject that opened it).
func (h *HTTP) sessionFor(ctx *fasthttp.RequestCtx, id codec.ID, p *Principal) *httpSession {
	sid := string(bytes.TrimSpace(ctx.Request.Header.Peek(hdrSessionID)))
	if sid == "" {
		h.writeError(ctx, fasthttp.StatusBadRequest, id, codec.NewError(codec.CodeInvalidRequest,
			"missing Mcp-Session-Id header: send initialize first and echo the id it returned"))
		return nil
	}
	hs := h.lookup(sid)
	if cn := h.srv.cluster; cn != nil {
		hs = cn.resolve(h, hs, sid) // re-hydrated from Redis when held by another node
	}
	if hs == nil {
		h.writeError(ctx, fasthttp.StatusNotFound, id, codec.NewError(codec.CodeSessionNotFound,
			"session %q not found: it ended or expired; initialize a new one", snippet(sid)))
		return nil
	}
	if owner := hs.ss.Principal(); owner != nil && p != nil && owner.Subject != p.Subject {
		h.writeError(ctx, fasthttp.StatusForbidden, id, SessionOwnerError(p.Subject))
		return nil
	}
	return hs
}

// openSession makes the session of a session-era initialize, owned by the principal the
// edge authenticated. It writes the refusal and returns nil when a session cap
// (server.max_sessions, server.max_sessions_per_principal) is reached.
func (h *HTTP) openSession(ctx *fasthttp.RequestCtx, id codec.ID, in *inbound) *httpSession {
	hs, err := h.newSessionFor("http", NewSessionID(), true, principalKey(in.principal, in.remoteIP))
	if err != nil {
		ce := asCodecError(err)
		status := ce.Code.HTTPStatus()
		h.cfg.Limits.refuseReply(ctx, h.cfg.Path, ce.Code, codec.AppendError(nil, id, ce))
		h.writeError(ctx, status, id, ce)
		return nil
	}
	if in.principal != nil {
		hs.ss.SetPrincipal(in.principal)
	}
	return hs
}

// checkProtocolHeader validates MCP-Protocol-Version on a session-era request.
func checkProtocolHeader(ctx *fasthttp.RequestCtx) *codec.Error {
	v := strings.TrimSpace(string(ctx.Request.Header.Peek(hdrProtocol)))
	if v == "" {
		return nil // absent: 2025-03-26 is assumed
	}
	if pv := parseVersion(v); pv == protoUnknown || pv >= proto20260728 {
		return codec.NewError(codec.CodeInvalidRequest, "unsupported MCP-Protocol-Version %q: want one of %s", snippet(v), strings.Join(SessionVersions, ", "))
	}
	return nil
}

func (h *HTTP) servePost(ctx *fasthttp.RequestCtx) {
	ct := ctx.Request.Header.ContentType()
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if !bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/json")) {
		h.writeError(ctx, fasthttp.StatusUnsupportedMediaType, codec.NullID, codec.NewError(codec.CodeInvalidRequest,
			"Content-Type must be application/json, got %q", snippet(string(ct))))
		return
	}
	okJSON, okSSE := accepts(ctx)
	if !okJSON && !okSSE {
		h.writeError(ctx, fasthttp.StatusNotAcceptable, codec.NullID, codec.NewError(codec.CodeInvalidRequest,
			"Accept must include application/json and text/event-stream"))
		return
	}
	body := ctx.PostBody()
	if len(body) > h.cfg.MaxBody {
		h.writeError(ctx, fasthttp.StatusRequestEntityTooLarge, codec.NullID, codec.NewError(codec.CodeMessageTooLarge,
			"request body exceeds %d bytes (transports.http.max_body)", h.cfg.MaxBody).WithData(map[string]any{"limit": h.cfg.MaxBody}))
		return
	}
	var edge inbound
	if !h.cfg.Limits.httpEdge(ctx, h.cfg.Path, &edge) {
		return // refused before decoding, and before any session exists
	}
	var arr [1]codec.Message
	msgs, batch, err := h.srv.dec.Decode(body, arr[:0])
	if err != nil {
		h.writeError(ctx, fasthttp.StatusBadRequest, decodeErrorID(err), asCodecError(err))
		return
	}
	if !batch && h.isStateless(ctx, &msgs[0]) {
		h.serveStateless(ctx, &msgs[0], okJSON, okSSE, &edge)
		return
	}

	// Session era.
	var hs *httpSession
	isInit := !batch && msgs[0].Kind == codec.KindRequest && msgs[0].Method == MethodInitialize
	created := false
	switch {
	case h.cfg.Stateless && ctx.Request.Header.Peek(hdrSessionID) == nil:
		hs = nil // throwaway session below
	case isInit:
		if len(bytes.TrimSpace(ctx.Request.Header.Peek(hdrSessionID))) > 0 {
			if hs = h.sessionFor(ctx, msgs[0].ID, edge.principal); hs == nil {
				return
			}
			break // initialize again on a live session: the server answers -32600
		}
		if hs = h.openSession(ctx, msgs[0].ID, &edge); hs == nil {
			return
		}
		created = true
		ctx.Response.Header.Set(hdrSessionID, hs.ss.ID())
	default:
		if e := checkProtocolHeader(ctx); e != nil {
			h.writeError(ctx, fasthttp.StatusBadRequest, firstID(msgs), e)
			return
		}
		if hs = h.sessionFor(ctx, firstID(msgs), edge.principal); hs == nil {
			return
		}
	}

	var ss, throwaway *Session
	if hs != nil {
		ss = hs.ss
		hs.active.Add(1)
		defer func() { hs.touch(); hs.active.Add(-1) }()
		hs.touch()
	} else {
		ss = h.throwawaySession(ctx)
		throwaway = ss // closed when the response is done, not when this returns
	}

	out := newPostOutput()
	out.in = edge
	out.setTraceHeaders(ctx)
	ss.lastActive.Store(coarseNow())
	hasRequest := false
	for i := range msgs {
		if msgs[i].Kind == codec.KindRequest || (msgs[i].Kind == codec.KindInvalid && msgs[i].Err != nil) {
			hasRequest = true
		}
	}
	if batch {
		h.srv.handleBatch(ss, msgs, out, &out.in)
	} else {
		h.srv.handleMessage(ss, &msgs[0], out, &out.in)
	}
	if created && out.refused() {
		// initialize was refused (admission, a bad version): no session for this client.
		ctx.Response.Header.Del(hdrSessionID)
		hs.end()
	}
	if !hasRequest {
		if b := out.takeReplies(); len(b) > 0 {
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.SetContentType("application/json")
			ctx.SetBody(b[0])
		} else {
			ctx.SetStatusCode(fasthttp.StatusAccepted)
		}
		if throwaway != nil {
			throwaway.Close()
		}
		return
	}
	priming := hs != nil && ss.ProtocolVersion() >= Version20251125
	h.respond(ctx, out, hs, okJSON, okSSE, priming, false, throwaway)
}

func firstID(msgs []codec.Message) codec.ID {
	if len(msgs) > 0 {
		return msgs[0].ID
	}
	return codec.NullID
}

// throwawaySession serves one session-era request in stateless mode: initialized at the
// version the header names (or the latest), registered nowhere.
func (h *HTTP) throwawaySession(ctx *fasthttp.RequestCtx) *Session {
	v := parseVersion(strings.TrimSpace(string(ctx.Request.Header.Peek(hdrProtocol))))
	if v == protoUnknown || v >= proto20260728 {
		v = proto20251125
	}
	return &Session{srv: h.srv, out: discardOutput{}, transport: "http", version: v, initialized: true, ready: true}
}

// respond waits for what a POST's handlers produce and answers with JSON when a single
// reply is all there is, or with an SSE stream as soon as anything else (a notification,
// a server→client request, CloseSSEStream) comes first.
// throwaway, when set, is closed once the response is complete (a session made for this
// request only).
func (h *HTTP) respond(ctx *fasthttp.RequestCtx, out *postOutput, hs *httpSession, okJSON, okSSE, priming, stateless bool, throwaway *Session) {
	streaming := false
	defer func() {
		if !streaming && throwaway != nil {
			throwaway.Close()
		}
	}()
	preferSSE := !okJSON // a client that takes only SSE gets SSE even for a lone reply
	jsonOnly := h.cfg.JSONResponse && okJSON || !okSSE
	for {
		out.mu.Lock()
		held := out.holds > 0
		n := len(out.replies)
		others := out.others
		forced := out.closeReq > 0
		if out.ev == nil && (held || n > 1 || preferSSE) {
			// Made when a wait may follow, not for a lone reply already there (most POSTs
			// are answered inline): a change after this, under the same lock, signals it.
			out.ev = make(chan struct{}, 1)
		}
		ev := out.ev
		out.mu.Unlock()
		if !held && (n <= 1 || jsonOnly) && !preferSSE {
			h.writeJSON(ctx, out.takeReplies(), stateless)
			return
		}
		// A lone reply while work is still held is not a reason to stream: the worker
		// releases right after sending it. Anything else first, or several replies, is.
		if !jsonOnly && (others > 0 || n > 1 || forced || preferSSE) {
			break // stream
		}
		select {
		case <-ev:
		case <-h.stop:
			h.writeError(ctx, fasthttp.StatusServiceUnavailable, codec.NullID, codec.NewError(codec.CodeShuttingDown, "server is shutting down"))
			return
		}
	}
	var st *sseStream
	if hs != nil {
		st = hs.newStream()
	} else {
		st = newSSEStream(0, 1<<20) // unbounded in practice: one request's messages
	}
	out.stream(st)
	if hs != nil {
		hs.active.Add(1)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache, no-transform")
	retry := h.cfg.SSERetry
	var ended <-chan struct{} = h.stop
	if hs != nil {
		ended = hs.endedChan()
	}
	h.streams.Add(1)
	gen := st.attach()
	streaming = true
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.streams.Add(-1)
		if throwaway != nil {
			defer throwaway.Close()
		}
		if hs != nil {
			defer hs.active.Add(-1)
			defer hs.touch()
		}
		sw := &sseWriter{w: w, ids: hs != nil, keepalive: h.cfg.SSEKeepAlive, stop: ended, shutdown: h.stop}
		if priming {
			if sw.priming(st.id, retry) != nil {
				return
			}
		}
		sw.follow(st, gen, 0)
	})
}

// writeJSON answers with the replies collected (one message, or a batch array).
func (h *HTTP) writeJSON(ctx *fasthttp.RequestCtx, replies [][]byte, stateless bool) {
	if len(replies) == 0 {
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		return
	}
	b := replies[len(replies)-1] // the reply comes last; notifications before it are dropped
	status := fasthttp.StatusOK
	code, isErr := errorCode(b)
	switch {
	case !isErr:
	case stateless:
		status = statelessStatus(code)
	default:
		status = sessionStatus(code)
	}
	if status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden || status == fasthttp.StatusTooManyRequests || status == fasthttp.StatusServiceUnavailable {
		h.cfg.Limits.refuseReply(ctx, h.cfg.Path, code, b)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func (h *HTTP) serveGet(ctx *fasthttp.RequestCtx) {
	if _, sse := accepts(ctx); !sse || len(ctx.Request.Header.Peek("Accept")) == 0 {
		ctx.Error("GET needs Accept: text/event-stream", fasthttp.StatusNotAcceptable)
		return
	}
	sid := ctx.Request.Header.Peek(hdrSessionID)
	if len(sid) == 0 {
		if h.cfg.Stateless || strings.TrimSpace(string(ctx.Request.Header.Peek(hdrProtocol))) == Version20260728 {
			ctx.Response.Header.Set("Allow", "POST")
			ctx.Error("no standalone stream without a session", fasthttp.StatusMethodNotAllowed)
			return
		}
	}
	if e := checkProtocolHeader(ctx); e != nil {
		h.writeError(ctx, fasthttp.StatusBadRequest, codec.NullID, e)
		return
	}
	var edge inbound
	if !h.cfg.Limits.httpEdge(ctx, h.cfg.Path, &edge) {
		return
	}
	hs := h.sessionFor(ctx, codec.NullID, edge.principal)
	if hs == nil {
		return
	}
	solo := hs.standaloneStream()
	st, cursor := solo, uint64(0)
	resumed := false
	if last := strings.TrimSpace(string(ctx.Request.Header.Peek(hdrLastEventID))); last != "" {
		if sid, seq, ok := parseEventID(last); ok {
			if s := hs.stream(sid); s != nil {
				st, cursor, resumed = s, seq, true
			}
		}
	}
	if !resumed {
		st.mu.Lock()
		cursor = st.sent
		st.mu.Unlock()
	}
	hs.active.Add(1)
	hs.touch()
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache, no-transform")
	gen := st.attach()
	if cn := h.srv.cluster; cn != nil && st == solo {
		cn.streamOpened(hs) // this node is the session's owner now
	}
	h.streams.Add(1)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.streams.Add(-1)
		defer hs.active.Add(-1)
		defer hs.touch()
		if _, err := w.WriteString(": ok\n\n"); err != nil || w.Flush() != nil {
			return
		}
		sw := &sseWriter{w: w, ids: true, keepalive: h.cfg.SSEKeepAlive, stop: hs.endedChan(), shutdown: h.stop}
		sw.follow(st, gen, cursor)
	})
}

func (h *HTTP) serveDelete(ctx *fasthttp.RequestCtx) {
	if len(ctx.Request.Header.Peek(hdrSessionID)) == 0 && h.cfg.Stateless {
		ctx.Error("no sessions in stateless mode", fasthttp.StatusMethodNotAllowed)
		return
	}
	var edge inbound
	if !h.cfg.Limits.httpEdge(ctx, h.cfg.Path, &edge) {
		return
	}
	hs := h.sessionFor(ctx, codec.NullID, edge.principal)
	if hs == nil {
		return
	}
	if cn := h.srv.cluster; cn != nil {
		cn.deleted(hs) // every node drops its copy
	}
	hs.end()
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// postOutput is the Output of one POST: it collects replies until the response kind is
// decided (JSON for a lone reply), then feeds an SSE stream.
type postOutput struct {
	mu       sync.Mutex
	holds    int
	replies  [][]byte
	first    [1][]byte // replies' backing array for the first reply (once: a taken slice may alias it)
	usedHead bool      // first has been handed out
	st       *sseStream
	closeReq time.Duration
	ev       chan struct{} // cap 1: something changed; made by respond's first wait, under mu

	// MRTR: the 2026 request's inputResponses and verified requestState (stateless.go).
	mrtr *mrtrInput

	// meta is the request's params._meta as serveStateless read it, or nil (versionFor
	// then decodes it from params).
	meta *requestMeta
	// call is the tools/call name and arguments read with meta (hasCall), which
	// decodeCallParams takes instead of decoding params again.
	call    CallToolParams
	hasCall bool

	// others counts collected messages that are not responses (notifications, requests).
	others int

	// W3C trace context of the POST (traceparent/tracestate headers), for tracing.
	traceparent, tracestate string

	// in is what the HTTP edge learnt of the POST (principal, signature, peer), handed to
	// the core with each of its messages.
	in inbound
}

// refused reports whether the one reply collected so far is an error: an initialize that
// failed must not leave a session behind.
func (o *postOutput) refused() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.replies) != 1 {
		return false
	}
	_, isErr := errorCode(o.replies[0])
	return isErr
}

func newPostOutput() *postOutput { return &postOutput{} }

// setTraceHeaders copies the request's W3C trace context headers, if any.
func (o *postOutput) setTraceHeaders(ctx *fasthttp.RequestCtx) {
	if v := ctx.Request.Header.Peek("traceparent"); len(v) > 0 {
		o.traceparent = string(v)
		o.tracestate = string(ctx.Request.Header.Peek("tracestate"))
	}
}

// TraceHeaders implements TraceHeaders: spans of requests on this POST are children of
// the caller's traceparent header unless params._meta carries one.
func (o *postOutput) TraceHeaders() (traceparent, tracestate string) {
	return o.traceparent, o.tracestate
}

// signal wakes respond if it waits; ev is o.ev read under o.mu (nil: nobody waits yet).
func signal(ev chan struct{}) {
	if ev == nil {
		return
	}
	select {
	case ev <- struct{}{}:
	default:
	}
}

// Reply queues a reply: by the Output contract a response (or a batch of them), so it
// is not decoded again to tell (isResponse).
func (o *postOutput) Reply(msg []byte) { o.add(msg, true) }

func (o *postOutput) Send(msg []byte) error {
	o.add(msg, false)
	return nil
}

// add queues msg; response says it is known to be a response.
func (o *postOutput) add(msg []byte, response bool) {
	o.mu.Lock()
	if o.st != nil {
		st := o.st
		o.mu.Unlock()
		st.add(msg)
		return
	}
	if o.replies == nil && !o.usedHead {
		o.replies, o.usedHead = o.first[:0], true
	}
	o.replies = append(o.replies, append([]byte(nil), msg...))
	if !response && !isResponse(msg) {
		o.others++
	}
	ev := o.ev
	o.mu.Unlock()
	signal(ev)
}

// isResponse reports whether msg is a JSON-RPC response (or a batch of them) rather than a
// notification or a server→client request. Only those others force a POST onto SSE: a
// worker's reply lands a moment before its Release, and must not look like a stream.
func isResponse(msg []byte) bool {
	var dec codec.Decoder
	var arr [1]codec.Message
	ms, _, err := dec.Decode(msg, arr[:0])
	if err != nil || len(ms) == 0 {
		return false
	}
	for i := range ms {
		if k := ms[i].Kind; k != codec.KindResponse && k != codec.KindError {
			return false
		}
	}
	return true
}

func (o *postOutput) Hold() { o.mu.Lock(); o.holds++; o.mu.Unlock() }

func (o *postOutput) Release() {
	o.mu.Lock()
	o.holds--
	st := o.st
	done := o.holds <= 0
	ev := o.ev
	o.mu.Unlock()
	if done && st != nil {
		st.finish()
	}
	signal(ev)
}

func (o *postOutput) takeReplies() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.replies
	o.replies = nil
	return r
}

// stream switches the output to st, moving what was collected into it.
func (o *postOutput) stream(st *sseStream) {
	o.mu.Lock()
	for _, m := range o.replies {
		st.add(m)
	}
	o.replies = nil
	o.st = st
	done := o.holds <= 0
	if o.closeReq > 0 {
		st.requestClose(o.closeReq)
	}
	o.mu.Unlock()
	if done {
		st.finish()
	}
}

// CloseSSEStream ends the HTTP response carrying this request's SSE stream without ending
// the request: the client reconnects (GET with Last-Event-ID) after retry and gets the
// rest, including the result (SSE polling, SEP-1699). Without a resumable stream it is a
// no-op.
func (r *Request) CloseSSEStream(retry time.Duration) {
	o, ok := r.out.(*postOutput)
	if !ok {
		return
	}
	o.mu.Lock()
	st := o.st
	if st == nil {
		o.closeReq = retry
		if o.closeReq <= 0 {
			o.closeReq = time.Millisecond
		}
	}
	ev := o.ev
	o.mu.Unlock()
	if st != nil {
		st.requestClose(retry)
	}
	signal(ev)
}

type discardOutput struct{}

func (discardOutput) Reply([]byte)      {}
func (discardOutput) Send([]byte) error { return nil }
func (discardOutput) Hold()             {}
func (discardOutput) Release()          {}

// HTTPStats is a point-in-time view of the HTTP side.
type HTTPStats struct {
	Sessions int // HTTP sessions alive
	Streams  int // SSE responses open
}

// Stats counts HTTP sessions and open SSE responses.
func (h *HTTP) Stats() HTTPStats {
	n := 0
	h.srv.EachSession(func(ss *Session) {
		if hs, _ := ss.Value().(*httpSession); hs != nil && hs.h == h {
			n++
		}
	})
	return HTTPStats{Sessions: n, Streams: int(h.streams.Load())}
}
