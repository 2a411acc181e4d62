package server

import (
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"

	"github.com/erlmcp/erlmcp-go/codec"
)

// sessionCaps bounds the sessions of a Server in all (Config.MaxSessions) and per principal
// (Config.MaxSessionsPerPrincipal): the authenticated subject, else the peer's address, so
// that one client cannot fill memory with sessions (100,000 initialize on one connection
// once kept 67 MB for the HTTP idle timeout). A session opened with OpenSession is counted
// under its principal key until it closes. The counts are sharded by key: opening a
// session takes one shard's lock for a map update.
type sessionCaps struct {
	max, perPrincipal int
	seed              maphash.Seed
	shards            [16]capShard
	refused           atomic.Uint64
}

type capShard struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *sessionCaps) init(max, perPrincipal int) {
	c.max, c.perPrincipal = max, perPrincipal
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].n = make(map[string]int)
	}
}

func (c *sessionCaps) shard(key string) *capShard {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// take counts one more session of key, or refuses it with the error to send.
func (c *sessionCaps) take(live int, key string) error {
	if c.max > 0 && live >= c.max {
		c.refused.Add(1)
		return codec.NewError(codec.CodeOverloaded, "too many sessions: the server holds %d, its limit (server.max_sessions); retry later", c.max).
			WithData(map[string]any{"limit": c.max, "scope": "max_sessions", "retryAfterMs": 1000})
	}
	if c.perPrincipal <= 0 || key == "" {
		return nil
	}
	sh := c.shard(key)
	sh.mu.Lock()
	n := sh.n[key]
	if n >= c.perPrincipal {
		sh.mu.Unlock()
		c.refused.Add(1)
		return codec.NewError(codec.CodeRateLimited, "too many sessions for this client: it holds %d, the limit per principal (server.max_sessions_per_principal); close some or retry later", c.perPrincipal).
			WithData(map[string]any{"limit": c.perPrincipal, "scope": "max_sessions_per_principal", "retryAfterMs": 1000})
	}
	sh.n[key] = n + 1
	sh.mu.Unlock()
	return nil
}

// put gives back the session of key that take counted.
func (c *sessionCaps) put(key string) {
	if c.perPrincipal <= 0 || key == "" {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	if n := sh.n[key]; n <= 1 {
		delete(sh.n, key)
	} else {
		sh.n[key] = n - 1
	}
	sh.mu.Unlock()
}

// OpenSession is NewSession for a transport that serves untrusted clients: the session
// counts against the session caps (Config.MaxSessions, Config.MaxSessionsPerPrincipal)
// under principalKey — the caller's authenticated subject ("sub:…") or else its address
// ("ip:…"; PrincipalKey makes it) — until it closes. Over a cap it returns the error to
// answer the client with (-32004 over max_sessions, -32003 over the per-principal cap,
// data.limit and data.retryAfterMs) and no session; erlmcp_sessions_refused_total counts it.
func (s *Server) OpenSession(transport, id, principalKey string, out Output) (*Session, error) {
	if err := s.caps.take(s.sessions.len(), principalKey); err != nil {
		return nil, err
	}
	ss := s.NewSession(transport, id, out)
	ss.capKey = principalKey
	return ss, nil
}

// PrincipalKey returns the key a client is counted under by the session caps and the rate
// limiter: "sub:" and the subject of p when it authenticated, else "ip:" and its address,
// else "".
func PrincipalKey(p *Principal, remoteIP string) string {
	switch {
	case p != nil:
		return "sub:" + p.Subject
	case remoteIP != "":
		return "ip:" + remoteIP
	}
	return ""
}

// principalKey is PrincipalKey.
func principalKey(p *Principal, remoteIP string) string { return PrincipalKey(p, remoteIP) }

// addrIP returns the host part of a network address, or "".
func addrIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return host
}
