package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// Cluster mode (issue 8): several nodes behind a load balancer share the session-era
// HTTP sessions' metadata, the tasks and the notifications through Redis (package
// cluster). This file is the server's side: which sessions a node owns, what it tells the
// cluster when a session changes, and what it does with the messages of other nodes.
//
// A Streamable HTTP session has a copy on every node a request of it reached; the copy's
// Output is a clusterSession (cluster_session.go), which knows the session's owner — the
// node holding its GET stream. Unsolicited messages raised on another node travel to the
// owner; resources/updated and list_changed are broadcast and every node delivers them only
// to the sessions it owns, so a client hears each once however many copies exist.
// TCP, stdio and legacy HTTP+SSE sessions live on one node and are always its own.
//
// With cluster mode off Server.cluster is nil and every hook is one nil check.

// clusterNode is a Server's side of cluster mode.
type clusterNode struct {
	srv  *Server
	c    *cluster.Cluster
	name string
	// refreshEvery is the least time between two TTL refreshes of one session (TTL/4).
	refreshEvery int64
	// rehydrateMu serializes creating a session from its record, so that two requests
	// for one unknown session make one copy.
	rehydrateMu  sync.Mutex
	rehydrations atomic.Uint64
	lastSweep    atomic.Int64 // unix ns of the last keep-alive sweep (tick)
	// redisWasUp is Redis's state at the last tick: a down → up edge rewrites the records
	// of every session held here (resync).
	redisWasUp atomic.Bool
}

// EnableCluster puts s in cluster mode: cfg names the node and Redis (cluster.Config);
// its callbacks (Sessions, Tasks, LocalSessions, OnMessage, Tick) are the server's and
// are overwritten, and a nil Logger becomes the server's. Call it once, after the
// registrations and before serving; then Start the returned Cluster, and Close it after
// the transports have stopped. The daemon does all this from the `cluster:` settings.
func (s *Server) EnableCluster(cfg cluster.Config) (*cluster.Cluster, error) {
	if s.cluster != nil {
		return nil, errors.New("server: EnableCluster called twice")
	}
	cn := &clusterNode{srv: s, name: cfg.Node}
	cfg.Sessions = cn.sessionRecord
	cfg.Tasks = cn.taskRecord
	cfg.LocalSessions = s.sessions.len
	cfg.OnMessage = cn.onMessage
	cfg.Tick = cn.tick
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	c, err := cluster.New(cfg)
	if err != nil {
		return nil, err
	}
	cn.c = c
	cn.refreshEvery = int64(c.SessionTTL() / 4)
	s.cluster = cn
	return c, nil
}

// Cluster returns the cluster of EnableCluster, or nil when not in cluster mode.
func (s *Server) Cluster() *cluster.Cluster {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.c
}

// Rehydrations counts sessions this node re-created from their Redis record.
func (s *Server) Rehydrations() uint64 {
	if s.cluster == nil {
		return 0
	}
	return s.cluster.rehydrations.Load()
}

// owns reports whether this node delivers ss's unsolicited messages: a session only it
// holds, a shared session whose GET stream is here, or any session while Redis is down
// (node-local operation).
func (cn *clusterNode) owns(ss *Session) bool {
	cs, ok := ss.out.(*clusterSession)
	if !ok {
		return true
	}
	o := cs.owner.Load()
	return o == nil || *o == cn.name || !cn.c.Up()
}

// localCopy returns this node's copy of shared session id, or nil. (Use the Session it
// returns rather than cs.hs.ss, which a session being created sets after it is listed.)
func (cn *clusterNode) localCopy(id string) (*Session, *clusterSession) {
	ss := cn.srv.sessions.get(id)
	if ss == nil {
		return nil, nil
	}
	cs, _ := ss.out.(*clusterSession)
	if cs == nil {
		return nil, nil
	}
	return ss, cs
}

// resourceUpdated delivers to the subscribers owned here and tells the other nodes.
func (cn *clusterNode) resourceUpdated(uri string) {
	cn.deliverResourceUpdated(uri)
	cn.c.Broadcast(cluster.Message{Kind: cluster.KindResourceUpdated, URI: uri})
}

func (cn *clusterNode) deliverResourceUpdated(uri string) {
	for _, ss := range cn.srv.subs.subscribers(uri) {
		if cn.owns(ss) {
			_ = ss.Notify(NotificationResourceUpdated, &ResourceUpdatedParams{URI: uri})
		}
	}
}

// listChanged delivers to the sessions owned here and tells the other nodes.
func (cn *clusterNode) listChanged(method string) {
	cn.deliverListChanged(method)
	cn.c.Broadcast(cluster.Message{Kind: cluster.KindListChanged, Method: method})
}

func (cn *clusterNode) deliverListChanged(method string) {
	cn.srv.sessions.each(func(ss *Session) {
		if ss.Initialized() && !ss.Closed() && cn.owns(ss) {
			_ = ss.Notify(method, struct{}{})
		}
	})
}

// listChangedMethods are the notifications a list_changed message may carry.
var listChangedMethods = map[string]bool{
	NotificationToolListChanged: true, NotificationResourceListChanged: true, NotificationPromptListChanged: true,
}

// onMessage handles a bus message from another node (on the bus goroutine: nothing here
// blocks).
func (cn *clusterNode) onMessage(m *cluster.Message) {
	switch m.Kind {
	case cluster.KindResourceUpdated:
		cn.deliverResourceUpdated(m.URI)
	case cluster.KindListChanged:
		if listChangedMethods[m.Method] {
			cn.deliverListChanged(m.Method)
		}
	case cluster.KindSessionEnded:
		if ss, _ := cn.localCopy(m.Session); ss != nil {
			if hs, _ := ss.Value().(*httpSession); hs != nil {
				hs.end()
			}
		}
	case cluster.KindSessionChanged:
		if ss, cs := cn.localCopy(m.Session); cs != nil {
			cs.apply(ss, m)
		}
	case cluster.KindDeliver:
		if _, cs := cn.localCopy(m.Session); cs != nil {
			cs.hs.standaloneStream().add(m.Data)
		} else {
			cn.srv.log.Debug("cluster: message for a session this node does not hold", "session", m.Session, "from", m.From)
		}
	case cluster.KindTaskUpdate:
		cn.applyTaskUpdate(m)
	case cluster.KindTaskCancel:
		if t := cn.srv.tasks().get(m.Task); t != nil {
			t.cancelNow()
		}
	}
}

// initialized records a shared session when initialize is answered, before the answer
// leaves (bounded by cluster.redis_timeout; queued when Redis does not answer): a load
// balancer that hashes Mcp-Session-Id may send the next request to another node. This is
// the one write a request waits for, once per session.
func (cn *clusterNode) initialized(ss *Session) {
	if cs, ok := ss.out.(*clusterSession); ok {
		_ = cn.c.SaveSessionNow(context.Background(), cs.id)
	}
}

// levelSet records logging/setLevel of a shared session.
func (cn *clusterNode) levelSet(ss *Session, level LoggingLevel) {
	if cs, ok := ss.out.(*clusterSession); ok {
		cn.c.SetLogLevel(cs.id, string(level))
	}
}

// subscribed records resources/subscribe (on) or unsubscribe of a shared session.
func (cn *clusterNode) subscribed(ss *Session, uri string, on bool) {
	if cs, ok := ss.out.(*clusterSession); ok {
		cn.c.Subscribe(cs.id, uri, on)
	}
}

// sessionRecord is cluster.Config.Sessions: the record of a shared session held here.
func (cn *clusterNode) sessionRecord(id string) (*cluster.SessionRecord, bool) {
	ss, cs := cn.localCopy(id)
	if cs == nil {
		return nil, false
	}
	ss.mu.Lock()
	if !ss.initialized || ss.closed {
		ss.mu.Unlock()
		return nil, false
	}
	rec := &cluster.SessionRecord{ID: id, ProtocolVersion: ss.version.String(), LogLevel: levelName(ss.logLevel), Created: cs.created}
	info, caps := ss.clientInfo, ss.clientCaps
	for uri := range ss.subsLocked() {
		rec.Subscriptions = append(rec.Subscriptions, uri)
	}
	ss.mu.Unlock()
	sort.Strings(rec.Subscriptions)
	if info != nil {
		rec.ClientInfo, _ = codec.Marshal(info)
	}
	if caps != nil {
		rec.ClientCapabilities, _ = codec.Marshal(caps)
	}
	if o := cs.owner.Load(); o != nil {
		rec.Owner = *o
	}
	return rec, true
}

// resync runs when Redis comes back after an outage: it queues a refresh of every session
// held here, which writes the record whole where it is gone (a Redis restarted empty, or
// sessions initialized during the outage), so that a failover of those sessions finds them
// at once instead of after their next TTL refresh. One queue entry per session, coalesced
// by the writer; nothing on the request path.
func (cn *clusterNode) resync(now int64) {
	n := 0
	cn.srv.sessions.each(func(ss *Session) {
		if cs, ok := ss.out.(*clusterSession); ok {
			cs.touched.Store(now)
			cn.c.TouchSession(cs.id)
			n++
		}
	})
	if n > 0 {
		cn.srv.log.Info("cluster: redis back; re-writing the records of sessions held here", "node", cn.name, "sessions", n)
	}
}

// levelNames maps a severity back to its level name.
var levelNames = [...]LoggingLevel{"", LevelDebug, LevelInfo, LevelNotice, LevelWarning, LevelError, LevelCritical, LevelAlert, LevelEmergency}

func levelName(sev uint8) string {
	if int(sev) < len(levelNames) {
		return string(levelNames[sev])
	}
	return ""
}

// tick runs after every heartbeat: once per TTL/4 it refreshes the records of sessions
// busy here without requests (an open GET stream keeps a session alive, but sends nothing
// that would touch it).
func (cn *clusterNode) tick() {
	now := time.Now().UnixNano()
	if up := cn.c.Up(); up != cn.redisWasUp.Swap(up) && up {
		cn.resync(now)
		return
	}
	last := cn.lastSweep.Load()
	if now-last < cn.refreshEvery || !cn.lastSweep.CompareAndSwap(last, now) {
		return
	}
	cn.srv.sessions.each(func(ss *Session) {
		if cs, ok := ss.out.(*clusterSession); ok && cs.hs.active.Load() > 0 {
			cs.refresh(now)
		}
	})
}

// verifyState reports whether tag is body's HMAC under a key the cluster agreed on (the
// current one, or the one before it).
func (cn *clusterNode) verifyState(body, tag []byte) bool {
	for _, k := range [2][]byte{cn.c.StateKey(), cn.c.PreviousStateKey()} {
		if k != nil && stateTagOK(k, body, tag) {
			return true
		}
	}
	return false
}

func stateTagOK(key, body, tag []byte) bool {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return hmac.Equal(tag, mac.Sum(nil))
}
