// Package cluster lets several erlmcp nodes behind a load balancer share session-era HTTP
// session metadata, task records and notifications through one Redis (issue 8). It holds
// the Redis side only — records, the writer, the pub/sub bus, the node registry and the
// health state — and never imports server: the server wires it in through the callbacks of
// Config (server/cluster*.go).
//
// What lives in Redis, under Config.KeyPrefix ("erlmcp:" by default):
//
//	session:<id>  hash   one session's metadata: protocol version, client info and
//	                     capabilities, log level, subscriptions (a field per URI), the node
//	                     holding its GET stream (owner), creation time; PEXPIRE SessionTTL,
//	                     refreshed by activity
//	task:<id>     string a task's JSON record (node running it, tasks/get detail); PX task TTL
//	node:<name>   string a node's JSON record (addr, version, sessions, started); PX 5 heartbeats
//	nodes         zset   node names scored by their last heartbeat (unix ms)
//	state_key     string the shared key sealing 2026 requestState, agreed with SETNX
//	value:<name>  string small shared values of tools (SetValue; the demo's note)
//
// and on pub/sub: channel "bus" (broadcast: resources/updated, list_changed, session ended,
// session changed — including ownership claims) and "bus:<node>" (messages for the sessions
// and tasks one node holds: routed notifications, tasks/update, tasks/cancel).
//
// A session is a hash rather than one JSON document so that nodes holding copies of it can
// change one field each (a subscription on A, the log level on B) without overwriting each
// other: every change is a field-level patch applied by a Lua script only while the record
// exists.
//
// Nothing on a request path waits for Redis except the read of a session or task the node
// does not hold (GetSession, GetTask, bounded by Config.RedisTimeout). Every write goes
// through one writer goroutine and a bounded queue that coalesces the pending changes of
// one session or task into one entry. When Redis is unreachable the node keeps serving what
// it holds: writes are retried with backoff (messages are dropped), Up turns false with the
// last error, and go-redis reconnects — the bus re-subscribes — when Redis is back.
//
// Use:
//
//	c, err := cluster.New(cluster.Config{
//		RedisURL: "redis://127.0.0.1:6379/0", Node: "a",
//		Sessions:  func(id string) (*cluster.SessionRecord, bool) { ... },
//		OnMessage: func(m *cluster.Message) { ... },
//	})
//	c.Start()
//	defer c.Close(ctx)
//	c.SaveSession(id)               // after initialize
//	c.Subscribe(id, uri, true)      // resources/subscribe
//	c.Broadcast(cluster.Message{Kind: cluster.KindResourceUpdated, URI: uri})
//	rec, err := c.GetSession(ctx, id) // re-hydration on another node
package cluster
