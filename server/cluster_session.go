package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// clusterSession is this node's copy of a shared Streamable HTTP session, and its Output
// for unsolicited messages: they go to the session's own stream when the session is owned
// here, else to the owner's node channel. It is made only in cluster mode.
type clusterSession struct {
	cn      *clusterNode
	hs      *httpSession
	id      string
	created time.Time
	owner   atomic.Pointer[string] // node holding the GET stream
	touched atomic.Int64           // unix ns of the last TTL refresh queued
}

// output makes the cluster side of a new shared session, owned by this node.
func (cn *clusterNode) output(hs *httpSession, id string) *clusterSession {
	now := time.Now()
	cs := &clusterSession{cn: cn, hs: hs, id: id, created: now}
	cs.owner.Store(&cn.name)
	cs.touched.Store(now.UnixNano())
	return cs
}

// Send implements Output: a message for a session owned by another live node travels
// there (its GET stream is there); otherwise it joins the session's stream here.
func (cs *clusterSession) Send(msg []byte) error {
	if o := cs.owner.Load(); o != nil && *o != cs.cn.name && cs.cn.c.Up() && cs.cn.c.NodeAlive(*o) {
		cs.cn.c.SendTo(*o, cluster.Message{Kind: cluster.KindDeliver, Session: cs.id, Data: msg}) // encoded (copied) now
		return nil
	}
	cs.hs.standaloneStream().add(msg)
	return nil
}

// Reply implements Output (unsolicited messages only: replies travel on their POST).
func (cs *clusterSession) Reply(msg []byte) { _ = cs.Send(msg) }

// Hold and Release implement Output.
func (cs *clusterSession) Hold()    {}
func (cs *clusterSession) Release() {}

// refresh queues a TTL refresh of the record, at most once per TTL/4.
func (cs *clusterSession) refresh(now int64) {
	if last := cs.touched.Load(); now-last >= cs.cn.refreshEvery && cs.touched.CompareAndSwap(last, now) {
		cs.cn.c.TouchSession(cs.id)
	}
}

// claim makes this node the session's owner and tells the others.
func (cs *clusterSession) claim() {
	if o := cs.owner.Load(); o != nil && *o == cs.cn.name {
		return
	}
	cs.owner.Store(&cs.cn.name)
	cs.cn.c.SetOwner(cs.id, cs.cn.name)
}

// apply takes another node's change of the session's metadata; ss is the session.
func (cs *clusterSession) apply(ss *Session, m *cluster.Message) {
	if m.Owner != "" {
		owner := m.Owner
		cs.owner.Store(&owner)
	}
	if m.Level != nil {
		ss.mu.Lock()
		ss.logLevel = LoggingLevel(*m.Level).severity()
		ss.mu.Unlock()
	}
	for uri, on := range m.Subs {
		ss.mu.Lock()
		if ss.closed {
			ss.mu.Unlock()
			return
		}
		had := ss.setSubLocked(uri, on)
		ss.mu.Unlock()
		switch {
		case on && !had:
			cs.cn.srv.subs.add(uri, ss)
		case !on && had:
			cs.cn.srv.subs.remove(uri, ss)
		}
	}
}

// resolve is sessionFor's cluster hook: a session held here is touched (TTL refresh at
// most every TTL/4; ownership taken over from a node that died); one that is not is
// re-hydrated from its record. nil means unknown to the cluster too (404).
func (cn *clusterNode) resolve(h *HTTP, hs *httpSession, sid string) *httpSession {
	if hs == nil {
		return cn.rehydrate(h, sid)
	}
	cs, ok := hs.ss.out.(*clusterSession)
	if !ok {
		return hs
	}
	cs.refresh(time.Now().UnixNano())
	if o := cs.owner.Load(); o != nil && *o != cn.name && cn.c.Up() && !cn.c.NodeAlive(*o) {
		cs.claim() // the owner is gone: its GET stream will reconnect somewhere, here is as good
	}
	return hs
}

// maxSessionIDLen bounds the ids looked up in Redis (ours are 32 hex digits).
const maxSessionIDLen = 128

// rehydrate re-creates session sid from its record (a request for a session this node
// does not hold): same id, version, client info and capabilities, log level and
// subscriptions. The read waits at most cluster.redis_timeout; a record that is missing,
// or a Redis that does not answer, means 404 (the client initializes again, locally).
func (cn *clusterNode) rehydrate(h *HTTP, sid string) *httpSession {
	if len(sid) > maxSessionIDLen {
		return nil
	}
	rec, err := cn.c.GetSession(context.Background(), sid)
	if err != nil {
		if !errors.Is(err, cluster.ErrNotFound) {
			cn.srv.log.Debug("cluster: re-hydration failed", "session", sid, "err", err)
		}
		return nil
	}
	v := parseVersion(rec.ProtocolVersion)
	if v == protoUnknown || v >= proto20260728 {
		cn.srv.log.Warn("cluster: session record with an unknown protocol version", "session", sid, "version", rec.ProtocolVersion)
		return nil
	}
	info, caps := &Implementation{}, &ClientCapabilities{}
	if len(rec.ClientInfo) > 0 && codec.Unmarshal(rec.ClientInfo, info) != nil {
		info = &Implementation{}
	}
	if len(rec.ClientCapabilities) > 0 && codec.Unmarshal(rec.ClientCapabilities, caps) != nil {
		caps = &ClientCapabilities{}
	}

	cn.rehydrateMu.Lock()
	defer cn.rehydrateMu.Unlock()
	if hs := h.lookup(sid); hs != nil {
		return hs // another request made it meanwhile
	}
	// Built whole before it is listed (as NewSession would list it at once): a request or
	// a bus message that finds it sees the re-hydrated state, never a blank session.
	hs := &httpSession{h: h}
	hs.touch()
	cs := cn.output(hs, sid)
	if !rec.Created.IsZero() {
		cs.created = rec.Created
	}
	owner := rec.Owner
	cs.owner.Store(&owner)
	ss := &Session{srv: cn.srv, out: cs, transport: "http", id: sid, seq: cn.srv.sessions.seq.Add(1),
		version: v, initialized: true, ready: true, clientInfo: info, clientCaps: caps,
		logLevel: LoggingLevel(rec.LogLevel).severity(), http: hs}
	ss.lastActive.Store(coarseNow())
	for _, uri := range rec.Subscriptions {
		ss.setSubLocked(uri, true) // not shared yet: no lock needed
	}
	hs.ss = ss
	for _, uri := range rec.Subscriptions {
		cn.srv.subs.add(uri, ss)
	}
	cn.srv.sessions.add(ss)
	if owner == "" || (owner != cn.name && cn.c.Up() && !cn.c.NodeAlive(owner)) {
		cs.owner.Store(nil)
		cs.claim()
	}
	cn.rehydrations.Add(1)
	return hs
}

// streamOpened is serveGet's hook: the session's GET stream is here now.
func (cn *clusterNode) streamOpened(hs *httpSession) {
	if cs, ok := hs.ss.out.(*clusterSession); ok {
		cs.claim()
	}
}

// deleted is serveDelete's hook: the record goes, and every node drops its copy.
func (cn *clusterNode) deleted(hs *httpSession) {
	if cs, ok := hs.ss.out.(*clusterSession); ok {
		cn.c.DeleteSession(cs.id)
	}
}
