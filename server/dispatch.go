package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/pool"
)

// methodInfo describes how one method is served.
type methodInfo struct {
	// serve answers the request.
	serve func(s *Server, ctx context.Context, r *Request) (any, error)
	// prepare, when set, decodes params before dispatch and tells whether the request
	// must run on a worker (user handlers that may block). It may stash decoded params on r.
	prepare func(s *Server, r *Request) (async bool, err error)
	// beforeInit marks methods allowed before initialize in strict lifecycle mode.
	beforeInit bool
	// name is the method name as a string that owns its bytes (the table key): Request.Method
	// is set to it, so middleware, tracing and handlers may keep r.Method although the frame
	// it was read from goes back to the transport's buffer pool when the wakeup ends.
	name string
}

// methods is the dispatch table of the built-in methods, keyed by method name. It is built
// once and never written: a Server adds an extension's methods to its own table
// (HandleMethod), so two Servers in one process never share or race on one.
var methods = func() map[string]*methodInfo {
	m := map[string]*methodInfo{
		MethodInitialize:           {serve: (*Server).initialize, beforeInit: true},
		MethodPing:                 {serve: (*Server).ping, beforeInit: true},
		MethodDiscover:             {serve: (*Server).discover, beforeInit: true},
		MethodToolsList:            {serve: (*Server).listTools},
		MethodToolsCall:            {serve: (*Server).callTool, prepare: (*Server).prepareCallTool},
		MethodResourcesList:        {serve: (*Server).listResources},
		MethodResourcesTemplates:   {serve: (*Server).listResourceTemplates},
		MethodResourcesRead:        {serve: (*Server).readResource, prepare: (*Server).prepareReadResource},
		MethodResourcesSubscribe:   {serve: (*Server).subscribe},
		MethodResourcesUnsubscribe: {serve: (*Server).unsubscribe},
		MethodPromptsList:          {serve: (*Server).listPrompts},
		MethodPromptsGet:           {serve: (*Server).getPrompt, prepare: (*Server).prepareGetPrompt},
		MethodLoggingSetLevel:      {serve: (*Server).setLevel},
		MethodCompletionComplete:   {serve: (*Server).complete, prepare: (*Server).prepareComplete},
		// The tasks extension (tasks.go).
		MethodTasksGet:    {serve: (*Server).tasksGet},
		MethodTasksUpdate: {serve: (*Server).tasksUpdate},
		MethodTasksCancel: {serve: (*Server).tasksCancel},
	}
	for name, mi := range m {
		mi.name = name
	}
	return m
}()

// method returns how name is served: a built-in method, or one an extension added to this
// server with HandleMethod; nil when neither.
func (s *Server) method(name string) *methodInfo {
	if mi := methods[name]; mi != nil {
		return mi
	}
	if ext := s.extMethods.Load(); ext != nil {
		return (*ext)[name]
	}
	return nil
}

// route is the innermost Handler: it finds the method and serves it.
func (s *Server) route(ctx context.Context, r *Request) (res any, err error) {
	mi := s.method(r.Method)
	if mi == nil {
		return nil, codec.NewError(codec.CodeMethodNotFound, "method not found: %q", snippet(r.Method))
	}
	// A handler that panics (a tool, resource or prompt of the application) fails its own
	// request with an internal error; the connection, its session and every other session
	// carry on. Without this a panic on a worker would end the process, and one inline
	// would leave the caller waiting for a reply that never comes.
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, s.panicked(v, "the "+r.Method+" handler", "method", r.Method)
		}
	}()
	return mi.serve(s, ctx, r)
}

// panicked logs a recovered panic v of what (attrs say which one) with its stack, and
// returns the internal error the request or task fails with instead.
func (s *Server) panicked(v any, what string, attrs ...any) *codec.Error {
	s.log.Error(what+" panicked", append(attrs, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))...)
	return codec.NewError(codec.CodeInternalError, "internal error: %s panicked (details are in the server log)", what)
}

// HandleFrame serves one frame (a JSON-RPC message or batch) received on ss. Replies to
// requests answered at once go to out.Reply; replies of slow handlers go to out.Send later,
// bracketed by out.Hold/out.Release. frame may be reused once HandleFrame returns.
func (s *Server) HandleFrame(ss *Session, frame []byte, out Output) {
	s.handleFrame(ss, frame, out, nil)
}

// handleFrame is HandleFrame with what the transport knew of the frame (in; nil for line
// transports).
func (s *Server) handleFrame(ss *Session, frame []byte, out Output, in *inbound) {
	start := monoNow()
	ss.lastActive.Store(coarseAt(start))
	var arr [1]codec.Message
	msgs, batch, err := s.dec.Decode(frame, arr[:0])
	if err != nil {
		s.replyError(out, decodeErrorID(err), asCodecError(err), "")
		return
	}
	if !batch {
		s.handleMessageAt(ss, &msgs[0], out, start, in)
		return
	}
	s.handleBatch(ss, msgs, out, in)
}

func decodeErrorID(err error) codec.ID {
	var ce *codec.Error
	if errors.As(err, &ce) && ce.ID.Kind() != codec.IDAbsent {
		return ce.ID
	}
	return codec.NullID
}

// inbound is what a transport knows about one message beyond its bytes, handed to the
// core with it. Line transports (TCP, TLS, stdio) pass nil: their credentials and
// signatures travel in params._meta, and their session knows its peer. The HTTP transport
// passes what its headers said, so that the one admission check (Limits.Admit) sees every
// request of every transport the same way and a check cannot be forgotten on one of them.
type inbound struct {
	// principal is who the transport authenticated for this message (the HTTP Authorization
	// header, checked before any session was made); nil when it carried no credentials.
	principal *Principal
	// signed is true when the transport verified the message's signature itself (the HTTP
	// signature headers over the body). Otherwise Admit asks for one in params._meta.
	signed bool
	// remoteIP is the peer's address (the rate-limit key of a caller without a principal).
	remoteIP string
}

// handleMessage serves one decoded message.
func (s *Server) handleMessage(ss *Session, m *codec.Message, out Output, in *inbound) {
	s.handleMessageAt(ss, m, out, monoNow(), in)
}

// handleMessageAt is handleMessage for a message that arrived at start (a monoNow value).
func (s *Server) handleMessageAt(ss *Session, m *codec.Message, out Output, start int64, in *inbound) {
	switch m.Kind {
	case codec.KindRequest:
		s.handleRequest(ss, m, out, start, in, false)
	case codec.KindNotification:
		s.handleNotification(ss, m)
	case codec.KindResponse, codec.KindError:
		ss.deliver(m)
	default:
		if m.Err != nil {
			s.replyError(out, m.Err.ID, m.Err, "")
		}
	}
}

// handleRequest admits, prepares and serves one request, inline or on a worker. It is
// the one door of every request of every transport: lifecycle, admission (Config.Admit),
// params, dispatch and the Observer all happen here. sync serves the request to
// completion on the calling goroutine (the elements of a batch, already on a worker).
func (s *Server) handleRequest(ss *Session, m *codec.Message, out Output, start int64, in *inbound, sync bool) {
	mi := s.method(m.Method)
	r := getRequest()
	r.Session, r.ID, r.Params, r.Transport, r.out, r.in = ss, m.ID, m.Params, ss.transport, out, in
	if mi != nil {
		r.Method = mi.name // owned: m.Method aliases the frame
	} else {
		r.Method = cloneString(m.Method) // unknown method: an error reply, off the hot path
	}
	r.version = s.versionFor(ss, r)

	// Admission first (a caller without credentials learns nothing else), then the
	// lifecycle: before initialize only initialize, ping and server/discover, and the
	// requests of the stateless era, which has no initialize.
	if s.cfg.Admit != nil {
		if err := s.cfg.Admit(r); err != nil {
			s.finish(r, nil, err, start, false)
			return
		}
	}
	if mi != nil && !mi.beforeInit && s.cfg.StrictLifecycle && !ss.Initialized() && !r.statelessEra() {
		s.finish(r, nil, codec.NewError(codec.CodeNotInitialized, "%s before initialize: this server enforces the lifecycle (server.strict_lifecycle); send initialize first", snippet(m.Method)), start, false)
		return
	}
	async := false
	if mi != nil && mi.prepare != nil {
		var err error
		if async, err = mi.prepare(s, r); err != nil {
			s.finish(r, nil, err, start, false)
			return
		}
	}
	if !async || sync {
		res, err := s.handle(context.Background(), r)
		s.finish(r, res, err, start, false)
		return
	}

	// Slow path: the handler may block, so it runs on a worker. Everything it reads from
	// the frame must be owned now.
	r.ID = r.ID.Clone()
	r.Params = bytes.Clone(r.Params) // r.Method is owned already (methodInfo.name)
	key := r.ID.Key()
	ctx, cancel := context.WithCancel(context.Background())
	if !ss.track(key, cancel) {
		cancel()
		s.finish(r, nil, codec.NewError(codec.CodeConnectionClosed, "session closed"), start, false)
		return
	}
	out.Hold()
	err := s.workers.Submit(func() {
		defer out.Release()
		defer cancel()
		// The CPU gate keeps CPU-bound handlers from starving the event goroutines that
		// answer pings inline (priority.go); waiting there ends with ctx (cancellation).
		var res any
		err := workGate.acquire(ctx)
		if err == nil {
			res, err = s.handle(ctx, r)
			workGate.release()
		}
		ss.untrack(key)
		if ctx.Err() != nil && err == nil {
			err = ctx.Err()
		}
		if errors.Is(err, context.Canceled) {
			// The client cancelled: the spec says not to answer.
			s.observe(r, codec.CodeRequestCancelled, start)
			r.release()
			return
		}
		s.finish(r, res, err, start, true)
	})
	if err != nil {
		ss.untrack(key)
		cancel()
		out.Release()
		code := codec.CodeOverloaded
		msg := "worker pool is full (server.workers.max and server.workers.queue bound slow handlers); retry later"
		if errors.Is(err, pool.ErrClosed) {
			code, msg = codec.CodeShuttingDown, "server is shutting down"
		}
		s.finish(r, nil, codec.NewError(code, "%s", msg).WithData(map[string]any{"retryAfterMs": 100}), start, false)
	}
}

// versionFor tells which protocol version governs r: the request's own _meta version (the
// stateless era) or else the session's negotiated one, or our latest before initialize.
func (s *Server) versionFor(ss *Session, r *Request) protoVersion {
	if o, ok := r.out.(*postOutput); ok && o.meta != nil { // read already (serveStateless)
		r.meta = o.meta
		if len(o.meta.ProgressToken) > 0 {
			r.progressToken = o.meta.ProgressToken
		}
		if v := parseVersion(o.meta.ProtocolVersion); v != protoUnknown {
			return v
		}
	}
	if len(r.Params) > 0 && bytes.Contains(r.Params, []byte(`"_meta"`)) {
		var pm paramsMeta
		if codec.Unmarshal(r.Params, &pm) == nil && pm.Meta != nil {
			r.meta = pm.Meta
			if len(pm.Meta.ProgressToken) > 0 {
				r.progressToken = pm.Meta.ProgressToken
			}
			if v := parseVersion(pm.Meta.ProtocolVersion); v != protoUnknown {
				return v
			}
		}
	}
	ss.mu.Lock()
	v := ss.version
	ss.mu.Unlock()
	if v == protoUnknown {
		return proto20251125
	}
	return v
}

// finish encodes and sends the reply of r, records it, and recycles r.
func (s *Server) finish(r *Request, res any, err error, start int64, async bool) {
	buf := pool.Get(512)
	var b []byte
	code := codec.Code(0)
	if err != nil {
		res, err = s.resultOf(res, err) // input-required and task results travel as errors
	}
	if err == nil {
		var body []byte
		if cr, ok := res.(*CallToolResult); ok && cr != nil {
			var scratch [256]byte
			if body, ok = appendCallResult(scratch[:0], cr); !ok {
				body = nil
			}
		}
		if body != nil {
			b = codec.AppendResultRaw(buf.B[:0], r.ID, body) // the common tools/call reply, without sonic
		} else {
			b, err = codec.AppendResult(buf.B[:0], r.ID, res)
		}
		if err == nil && r.version >= proto20260728 {
			// A tools/list filtered by the caller's scopes is that caller's alone.
			b = stampResult(b, r.Method, r.Method == MethodToolsList && s.cfg.ToolAccess != nil)
		}
		if err == nil && len(b) > s.cfg.MaxResponseBytes {
			err = codec.NewError(codec.CodeResponseTooLarge, "response of %d bytes exceeds message_size.max_response_size (%d bytes)", len(b), s.cfg.MaxResponseBytes).
				WithData(map[string]any{"limit": s.cfg.MaxResponseBytes, "size": len(b)})
		} else if err != nil {
			s.log.Error("encoding result failed", "method", r.Method, "err", err)
			err = codec.NewError(codec.CodeInternalError, "encoding the %s result failed", r.Method)
		}
	}
	if err != nil {
		ce := asCodecError(err)
		code = ce.Code
		b = codec.AppendError(buf.B[:0], r.ID, ce)
	}
	buf.B = b
	if async {
		if serr := r.out.Send(b); serr != nil && s.log.Enabled(context.Background(), -4) {
			s.log.Debug("reply not delivered", "method", r.Method, "err", serr)
		}
	} else {
		r.out.Reply(b)
	}
	buf.Release()
	s.observe(r, code, start)
	r.release()
}

func (s *Server) observe(r *Request, code codec.Code, start int64) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.RequestDone(r.Transport, r.Method, code, sinceMono(start))
	}
}

// replyError answers with an error outside any request (decode failures, oversize frames).
func (s *Server) replyError(out Output, id codec.ID, e *codec.Error, transport string) {
	buf := pool.Get(256)
	buf.B = codec.AppendError(buf.B[:0], id, e)
	out.Reply(buf.B)
	buf.Release()
	if s.cfg.Observer != nil {
		s.cfg.Observer.RequestDone(transport, "", e.Code, 0)
	}
}

// ReplyError sends a JSON-RPC error with a null id through out.Reply; transports use it for
// faults found before a message is decoded, such as an oversized frame.
func (s *Server) ReplyError(out Output, e *codec.Error, transport string) {
	s.replyError(out, codec.NullID, e, transport)
}

// asCodecError turns any handler error into a JSON-RPC error. Internal details of
// non-protocol errors are logged, not sent.
func asCodecError(err error) *codec.Error {
	var ce *codec.Error
	if errors.As(err, &ce) {
		return ce
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codec.NewError(codec.CodeRequestTimeout, "request timed out")
	case errors.Is(err, context.Canceled):
		return codec.NewError(codec.CodeRequestCancelled, "request cancelled")
	}
	return codec.NewError(codec.CodeInternalError, "internal error: %v", err)
}

// handleNotification serves a client notification. Unknown ones are ignored, as JSON-RPC
// requires (no reply is possible).
func (s *Server) handleNotification(ss *Session, m *codec.Message) {
	start := monoNow()
	switch m.Method {
	case NotificationInitialized:
		ss.mu.Lock()
		ss.ready = true
		ss.mu.Unlock()
	case NotificationCancelled:
		var p CancelledParams
		if codec.Unmarshal(m.Params, &p) == nil && len(p.RequestID) > 0 {
			if id, ok := idFromRaw(p.RequestID); ok {
				ss.cancel(id.Key())
			}
		}
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.RequestDone(ss.transport, m.Method, 0, sinceMono(start))
	}
}

// idFromRaw turns the raw JSON of a requestId into an ID.
func idFromRaw(raw []byte) (codec.ID, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return codec.ID{}, false
	}
	if raw[0] == '"' {
		var s string
		if codec.Unmarshal(raw, &s) != nil {
			return codec.ID{}, false
		}
		return codec.StringID(s), true
	}
	var n int64
	if codec.Unmarshal(raw, &n) != nil {
		return codec.ID{}, false
	}
	return codec.IntID(n), true
}

// handleBatch serves a JSON-RPC batch: accepted only on sessions that negotiated 2025-03-26,
// the one version that had batches. The replies go out as one array, so the whole batch
// runs on a worker when any element must.
func (s *Server) handleBatch(ss *Session, msgs []codec.Message, out Output, in *inbound) {
	ss.mu.Lock()
	v := ss.version
	ss.mu.Unlock()
	if !v.batchesAllowed() {
		name := v.String()
		if name == "" {
			name = "(before initialize) " + LatestSessionVersion
		}
		s.replyError(out, codec.NullID, codec.NewError(codec.CodeInvalidRequest,
			"JSON-RPC batches are not supported in protocol version %s (only 2025-03-26 had them)", name), ss.transport)
		return
	}
	// Own every message, then serve them one by one on a worker collecting replies.
	owned := make([]codec.Message, len(msgs))
	for i := range msgs {
		owned[i] = cloneMessage(&msgs[i])
	}
	out.Hold()
	err := s.workers.Submit(func() {
		defer out.Release()
		col := &collector{}
		for i := range owned {
			m := &owned[i]
			if m.Kind == codec.KindRequest {
				s.handleRequest(ss, m, col, monoNow(), in, true)
			} else {
				s.handleMessage(ss, m, col, in)
			}
		}
		if b := col.array(); b != nil {
			_ = out.Send(b)
		}
	})
	if err != nil {
		out.Release()
		s.replyError(out, codec.NullID, codec.NewError(codec.CodeOverloaded, "worker pool is full; retry the batch later"), ss.transport)
	}
}

// collector gathers the replies of a batch into one JSON array.
type collector struct {
	buf []byte
	n   int
}

func (c *collector) Reply(msg []byte) {
	if c.n == 0 {
		c.buf = append(c.buf, '[')
	} else {
		c.buf = append(c.buf, ',')
	}
	c.buf = append(c.buf, msg...)
	c.n++
}
func (c *collector) Send(msg []byte) error { c.Reply(msg); return nil }
func (c *collector) Hold()                 {}
func (c *collector) Release()              {}
func (c *collector) array() []byte {
	if c.n == 0 {
		return nil
	}
	return append(c.buf, ']')
}

func cloneMessage(m *codec.Message) codec.Message {
	c := *m
	c.ID = m.ID.Clone()
	c.Method = cloneString(m.Method)
	c.Params = bytes.Clone(m.Params)
	c.Result = bytes.Clone(m.Result)
	c.ErrMessage = cloneString(m.ErrMessage)
	c.ErrData = bytes.Clone(m.ErrData)
	return c
}

func cloneString(s string) string { return string([]byte(s)) }
