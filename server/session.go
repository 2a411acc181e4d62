package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/pool"
)

// Session is one client's conversation with the server: a TCP connection, a stdio pipe, or
// an HTTP session (Mcp-Session-Id). It holds what initialize negotiated and what the client
// asked for since (log level, subscriptions), plus the requests in flight both ways.
// Maps and the requests-in-flight state are made on first use so that an idle session
// stays small (an idle HTTP session is this struct, its httpSession, its id and its
// session-table entry; the client's initialize info is shared with identical clients).
//
// Session is safe for concurrent use.
type Session struct {
	srv       *Server
	out       Output
	transport string
	id        string

	mu          sync.Mutex // guards every field below
	version     protoVersion
	initialized bool // initialize answered
	ready       bool // notifications/initialized received
	closed      bool
	logLevel    uint8               // severity; 0 = not set (no notifications/message sent)
	stateless   bool                // a throwaway session of one 2026-07-28 request (no server→client requests)
	filed       bool                // filed in the session table under id (set once, in add; id is fixed then)
	clientInfo  *Implementation     // shared with sessions whose client said the same (internClient)
	clientCaps  *ClientCapabilities // likewise
	ext         *sessionExt         // the rest; nil until the session needs some of it
	http        *httpSession        // the HTTP transport's state (SetValue of an *httpSession)

	lastActive atomic.Int64               // unix seconds of the last message
	sec        atomic.Pointer[sessionSec] // principal and rate-limit key (auth.go)
	seq        uint64                     // creation order; shards anonymous sessions
	capKey     string                     // principal key counted by the session caps (OpenSession); "" if none
}

// sessionExt is what a session has only once it does more than sit idle: requests in
// flight both ways (async ones from the client that notifications/cancelled may cancel,
// server→client ones waiting for their answer), subscriptions, a SetValue value.
type sessionExt struct {
	inflight map[string]context.CancelFunc // async requests by id key
	pending  map[int64]chan clientReply    // server→client requests by id
	subs     map[string]struct{}           // subscribed resource URIs
	nextID   int64
	value    any // what SetValue stored, unless an *httpSession (Session.http)
}

// extLocked returns the session's sessionExt, making it; ss.mu must be held.
func (ss *Session) extLocked() *sessionExt {
	if ss.ext == nil {
		ss.ext = &sessionExt{}
	}
	return ss.ext
}

// subsLocked returns the subscribed resource URIs (nil when none); ss.mu must be held.
func (ss *Session) subsLocked() map[string]struct{} {
	if ss.ext == nil {
		return nil
	}
	return ss.ext.subs
}

// setSubLocked records (on) or drops the subscription to uri and reports whether the
// session had it before; ss.mu must be held.
func (ss *Session) setSubLocked(uri string, on bool) (had bool) {
	if ss.ext == nil && !on {
		return false
	}
	x := ss.extLocked()
	_, had = x.subs[uri]
	switch {
	case on && !had:
		if x.subs == nil {
			x.subs = make(map[string]struct{})
		}
		x.subs[uri] = struct{}{}
	case !on && had:
		delete(x.subs, uri)
	}
	return had
}

type clientReply struct {
	result []byte // owned copy
	err    *codec.Error
}

// NewSession creates a session whose unsolicited messages go to out and registers it with
// the server. transport names it in metrics ("tcp", "stdio", "http"); id is the HTTP session
// id or "" (one is made when asked for). Close it when the transport is done with it.
func (s *Server) NewSession(transport, id string, out Output) *Session {
	ss := &Session{srv: s, out: out, transport: transport, id: id, seq: s.sessions.seq.Add(1)}
	ss.lastActive.Store(time.Now().Unix())
	s.sessions.add(ss)
	return ss
}

// ID returns the session id, making a random one on first use when the transport gave none.
func (ss *Session) ID() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.id == "" {
		ss.id = NewSessionID()
	}
	return ss.id
}

// Key returns a process-unique name for the session, cheap to make and never shown to
// clients (rate-limit keys): the HTTP session id when there is one, else a sequence number.
func (ss *Session) Key() string {
	if ss.filed {
		return ss.id // never written once filed
	}
	return "#" + strconv.FormatUint(ss.seq, 36)
}

// NewSessionID returns a random 128-bit id in hex, fit for Mcp-Session-Id (visible ASCII).
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Transport returns the transport name given at creation.
func (ss *Session) Transport() string { return ss.transport }

// ProtocolVersion returns the negotiated version ("" before initialize).
func (ss *Session) ProtocolVersion() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.version.String()
}

// Initialized reports whether initialize has been answered on this session.
func (ss *Session) Initialized() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.initialized
}

// ClientInfo returns the client's initialize clientInfo, or nil. It may be shared with
// other sessions: do not modify it.
func (ss *Session) ClientInfo() *Implementation {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.clientInfo
}

// ClientCapabilities returns the client's declared capabilities, or nil. It may be shared
// with other sessions: do not modify it.
func (ss *Session) ClientCapabilities() *ClientCapabilities {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.clientCaps
}

// SetValue stores transport data on the session; Value returns it.
func (ss *Session) SetValue(v any) {
	ss.mu.Lock()
	ss.http, _ = v.(*httpSession) // the HTTP transport's own, typed: one word per session
	switch {
	case ss.http == nil:
		ss.extLocked().value = v
	case ss.ext != nil:
		ss.ext.value = nil
	}
	ss.mu.Unlock()
}

// Value returns what SetValue stored.
func (ss *Session) Value() any {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.http != nil {
		return ss.http
	}
	if ss.ext == nil {
		return nil
	}
	return ss.ext.value
}

// LastActive returns when the session last received a message.
func (ss *Session) LastActive() time.Time { return time.Unix(ss.lastActive.Load(), 0) }

// Closed reports whether Close was called.
func (ss *Session) Closed() bool { ss.mu.Lock(); defer ss.mu.Unlock(); return ss.closed }

// Close ends the session: in-flight handlers are cancelled, pending server→client requests
// fail, subscriptions are dropped, and the server forgets it. Idempotent.
func (ss *Session) Close() {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	var inflight map[string]context.CancelFunc
	var pending map[int64]chan clientReply
	var subs map[string]struct{}
	if x := ss.ext; x != nil {
		inflight, pending, subs = x.inflight, x.pending, x.subs
		x.inflight, x.pending, x.subs = nil, nil, nil
	}
	ss.mu.Unlock()
	for _, cancel := range inflight {
		cancel()
	}
	for _, ch := range pending {
		ch <- clientReply{err: codec.NewError(codec.CodeConnectionClosed, "session closed before the client answered")}
	}
	for uri := range subs {
		ss.srv.subs.remove(uri, ss)
	}
	ss.srv.sessions.remove(ss)
	ss.srv.caps.put(ss.capKey)
}

// Notify sends a notification to the client on the session's own channel.
func (ss *Session) Notify(method string, params any) error {
	return notify(ss.out, method, params)
}

func notify(out Output, method string, params any) error {
	buf := pool.Get(256)
	defer buf.Release()
	b, err := codec.AppendNotification(buf.B[:0], method, params)
	if err != nil {
		return fmt.Errorf("server: encoding %s: %w", method, err)
	}
	buf.B = b
	return out.Send(b)
}

// Log sends notifications/message when level is at or above the level the client set with
// logging/setLevel. Before the client sets a level nothing is sent.
func (ss *Session) Log(level LoggingLevel, logger string, data any) error {
	return ss.logTo(ss.out, level, logger, data)
}

func (ss *Session) logTo(out Output, level LoggingLevel, logger string, data any) error {
	ss.mu.Lock()
	min := ss.logLevel
	ss.mu.Unlock()
	if min == 0 || level.severity() < min {
		return nil
	}
	return notify(out, NotificationMessage, &LoggingMessageParams{Level: level, Logger: logger, Data: data})
}

// call sends a request to the client through out and waits for its answer, ctx, the
// server's ClientRequestTimeout, or the session's end. result receives the decoded result.
func (ss *Session) call(ctx context.Context, out Output, method string, params, result any) error {
	if ss.stateless {
		return statelessCall(out, method, params, result) // input-required round trip (stateless.go)
	}
	ch := make(chan clientReply, 1)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return codec.NewError(codec.CodeConnectionClosed, "session closed")
	}
	calls := ss.extLocked()
	calls.nextID++
	id := calls.nextID
	if calls.pending == nil {
		calls.pending = make(map[int64]chan clientReply)
	}
	calls.pending[id] = ch
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		delete(calls.pending, id)
		ss.mu.Unlock()
	}()

	buf := pool.Get(512)
	b, err := codec.AppendRequest(buf.B[:0], codec.IntID(id), method, params)
	if err != nil {
		buf.Release()
		return fmt.Errorf("server: encoding %s: %w", method, err)
	}
	buf.B = b
	err = out.Send(b)
	buf.Release()
	if err != nil {
		return codec.NewError(codec.CodeConnectionClosed, "sending %s to the client: %v", method, err)
	}

	timer := time.NewTimer(ss.srv.cfg.ClientRequestTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return r.err
		}
		if result == nil {
			return nil
		}
		if err := codec.Unmarshal(r.result, result); err != nil {
			return codec.NewError(codec.CodeInvalidParams, "client's %s result does not decode: %v", method, err)
		}
		return nil
	case <-ctx.Done():
		ss.cancelClientRequest(out, id, ctx.Err())
		return ctx.Err()
	case <-timer.C:
		ss.cancelClientRequest(out, id, nil)
		return codec.NewError(codec.CodeRequestTimeout, "client did not answer %s within %s", method, ss.srv.cfg.ClientRequestTimeout)
	}
}

// cancelClientRequest tells the client we stopped waiting for request id.
func (ss *Session) cancelClientRequest(out Output, id int64, cause error) {
	reason := "timed out"
	if cause != nil {
		reason = cause.Error()
	}
	_ = notify(out, NotificationCancelled, &CancelledParams{RequestID: json.RawMessage(strconv.FormatInt(id, 10)), Reason: reason})
}

// deliver routes a client's response to the waiting call. The message's bytes are copied.
func (ss *Session) deliver(m *codec.Message) bool {
	if m.ID.Kind() != codec.IDNumber {
		return false
	}
	id, err := strconv.ParseInt(string(m.ID.Raw()), 10, 64)
	if err != nil {
		return false
	}
	ss.mu.Lock()
	var ch chan clientReply
	ok := false
	if x := ss.ext; x != nil {
		if ch, ok = x.pending[id]; ok {
			delete(x.pending, id)
		}
	}
	ss.mu.Unlock()
	if !ok {
		return false
	}
	if m.Kind == codec.KindError {
		ch <- clientReply{err: &codec.Error{Code: m.ErrCode, Message: m.ErrMessage}}
	} else {
		ch <- clientReply{result: append([]byte(nil), m.Result...)}
	}
	return true
}

// track registers an async request so notifications/cancelled can cancel it.
func (ss *Session) track(key string, cancel context.CancelFunc) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	calls := ss.extLocked()
	if calls.inflight == nil {
		calls.inflight = make(map[string]context.CancelFunc)
	}
	calls.inflight[key] = cancel
	return true
}

func (ss *Session) untrack(key string) {
	ss.mu.Lock()
	if ss.ext != nil {
		delete(ss.ext.inflight, key)
	}
	ss.mu.Unlock()
}

// cancel cancels the in-flight request with the given id key.
func (ss *Session) cancel(key string) bool {
	ss.mu.Lock()
	var c context.CancelFunc
	ok := false
	if ss.ext != nil {
		c, ok = ss.ext.inflight[key]
		delete(ss.ext.inflight, key)
	}
	ss.mu.Unlock()
	if ok {
		c()
	}
	return ok
}

// sessionTable is the set of live sessions, sharded so that adding and removing sessions
// from many connections at once does not contend on one lock.
type sessionTable struct {
	seed   maphash.Seed
	shards [32]sessionShard
	n      atomic.Int64
	seq    atomic.Uint64
}

type sessionShard struct {
	mu   sync.Mutex
	byID map[string]*Session
	anon map[*Session]struct{}
}

func (t *sessionTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].byID = make(map[string]*Session)
		t.shards[i].anon = make(map[*Session]struct{})
	}
}

// shardOf files a session by the id it had when added (filed: the id is fixed from then
// on), so a session that ID() names later is still found where it was filed.
func (t *sessionTable) shardOf(ss *Session) *sessionShard {
	if ss.filed {
		return &t.shards[maphash.String(t.seed, ss.id)%uint64(len(t.shards))]
	}
	return &t.shards[ss.seq%uint64(len(t.shards))]
}

func (t *sessionTable) add(ss *Session) {
	ss.filed = ss.id != "" // before the session is shared: never written again
	sh := t.shardOf(ss)
	sh.mu.Lock()
	if ss.filed {
		sh.byID[ss.id] = ss
	} else {
		sh.anon[ss] = struct{}{}
	}
	sh.mu.Unlock()
	t.n.Add(1)
}

func (t *sessionTable) remove(ss *Session) {
	sh := t.shardOf(ss)
	sh.mu.Lock()
	removed := false
	if ss.filed {
		if sh.byID[ss.id] == ss {
			delete(sh.byID, ss.id)
			removed = true
		}
	} else if _, ok := sh.anon[ss]; ok {
		delete(sh.anon, ss)
		removed = true
	}
	sh.mu.Unlock()
	if removed {
		t.n.Add(-1)
	}
}

func (t *sessionTable) get(id string) *Session {
	sh := &t.shards[maphash.String(t.seed, id)%uint64(len(t.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.byID[id]
}

func (t *sessionTable) len() int { return int(t.n.Load()) }

// each calls f for every session; f must not block.
func (t *sessionTable) each(f func(*Session)) {
	var batch []*Session
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		batch = batch[:0]
		for _, ss := range sh.byID {
			batch = append(batch, ss)
		}
		for ss := range sh.anon {
			batch = append(batch, ss)
		}
		sh.mu.Unlock()
		for _, ss := range batch {
			f(ss)
		}
	}
}

// Session returns the live session with the given id, or nil.
func (s *Server) Session(id string) *Session { return s.sessions.get(id) }

// EachSession calls f for every live session.
func (s *Server) EachSession(f func(*Session)) { s.sessions.each(f) }

// subscriptions indexes resource URI → subscribed sessions.
type subscriptions struct {
	mu    sync.RWMutex
	byURI map[string]map[*Session]struct{}
}

func (sb *subscriptions) add(uri string, ss *Session) {
	sb.mu.Lock()
	if sb.byURI == nil {
		sb.byURI = make(map[string]map[*Session]struct{})
	}
	set := sb.byURI[uri]
	if set == nil {
		set = make(map[*Session]struct{})
		sb.byURI[uri] = set
	}
	set[ss] = struct{}{}
	sb.mu.Unlock()
}

func (sb *subscriptions) remove(uri string, ss *Session) {
	sb.mu.Lock()
	if set := sb.byURI[uri]; set != nil {
		delete(set, ss)
		if len(set) == 0 {
			delete(sb.byURI, uri)
		}
	}
	sb.mu.Unlock()
}

func (sb *subscriptions) subscribers(uri string) []*Session {
	sb.mu.RLock()
	defer sb.mu.RUnlock()
	set := sb.byURI[uri]
	out := make([]*Session, 0, len(set))
	for ss := range set {
		out = append(out, ss)
	}
	return out
}

func (sb *subscriptions) len() int {
	sb.mu.RLock()
	defer sb.mu.RUnlock()
	n := 0
	for _, set := range sb.byURI {
		n += len(set)
	}
	return n
}
