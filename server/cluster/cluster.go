package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is one node's connection to the cluster: the Redis client, the writer, the bus
// subscriber and the heartbeat. New builds it without touching Redis; Start runs it; Close
// stops it. All methods are safe for concurrent use; the queueing ones (SaveSession,
// Subscribe, Broadcast, …) never block.
type Cluster struct {
	cfg  Config
	keys keyspace
	rdb  *redis.Client
	q    *queue

	// Health: commands succeed (cmdOK) and the bus is subscribed (subOK).
	cmdOK   atomic.Bool
	subOK   atomic.Bool
	lastErr atomic.Pointer[string]
	errAt   atomic.Int64 // unix nanoseconds of lastErr
	logAt   atomic.Int64 // unix nanoseconds of the last error logged (throttle)
	upWas   atomic.Bool  // last up state logged

	// Registry: the nodes seen at the last heartbeat, and their names.
	nodes atomic.Pointer[[]NodeInfo]
	live  atomic.Pointer[map[string]struct{}]

	// The agreed request-state key, and the one before it (still accepted).
	stateKey, prevStateKey atomic.Pointer[[]byte]

	published, received, errs atomic.Uint64

	started  time.Time
	instance string                 // random per process (NodeInfo.Instance)
	addr     atomic.Pointer[string] // Config.Addr, or SetAddr's
	ps       *redis.PubSub
	stop     chan struct{}
	wg       sync.WaitGroup
	runOnce  sync.Once
	endOnce  sync.Once
}

// New checks cfg and builds the node's cluster side. It does not contact Redis (Start
// does), so a node starts, and serves locally, while Redis is down.
func New(cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	if cfg.Node == "" {
		return nil, fmt.Errorf("cluster: node name is empty (set cluster.node or ERLMCP_NODE)")
	}
	opt, err := cfg.redisOptions()
	if err != nil {
		return nil, err
	}
	useLogger(cfg.Logger)
	var inst [8]byte
	_, _ = rand.Read(inst[:])
	c := &Cluster{cfg: cfg, keys: keyspace{cfg.KeyPrefix}, q: newQueue(cfg.QueueSize), stop: make(chan struct{}),
		instance: hex.EncodeToString(inst[:])}
	c.rdb = redis.NewClient(opt)
	c.addr.Store(&c.cfg.Addr)
	empty := []NodeInfo{}
	c.nodes.Store(&empty)
	c.live.Store(&map[string]struct{}{})
	if len(cfg.StateKey) > 0 {
		k := append([]byte(nil), cfg.StateKey...)
		c.stateKey.Store(&k)
	}
	none := "not connected yet"
	c.lastErr.Store(&none)
	return c, nil
}

// Start contacts Redis once (bounded by RedisTimeout: a Redis that is down leaves the
// node degraded, not stopped), starts the writer, the bus subscriber and the heartbeat,
// and waits (at most RedisTimeout) for the bus to be subscribed, so that Up is true on
// return when Redis is. Calling it again does nothing.
func (c *Cluster) Start() {
	c.runOnce.Do(func() {
		c.started = time.Now()
		c.beat()
		c.ps = c.rdb.Subscribe(context.Background(), c.keys.bus(), c.keys.nodeBus(c.cfg.Node))
		c.wg.Add(3)
		go c.runWriter()
		go c.runBus()
		go c.runHeartbeat()
		for deadline := time.Now().Add(c.cfg.RedisTimeout); c.cmdOK.Load() && !c.subOK.Load() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	})
}

// SetAddr sets the address the registry shows for this node (the bound one, once known).
func (c *Cluster) SetAddr(addr string) { c.addr.Store(&addr) }

// Close stops the node's cluster side: it flushes what the writer holds and removes the
// node's registry record (both bounded by ctx), then stops the goroutines and closes the
// client. Session and task records stay: other nodes serve them. Idempotent.
func (c *Cluster) Close(ctx context.Context) error {
	return c.end(ctx, true)
}

func (c *Cluster) end(ctx context.Context, deregister bool) error {
	var err error
	c.endOnce.Do(func() {
		close(c.stop)
		if c.ps != nil {
			_ = c.ps.Close() // unblocks the bus goroutine's Receive
		}
		c.wg.Wait()
		if c.ps != nil && deregister {
			err = errors.Join(err, c.flush(ctx))
			keys := []string{c.keys.node(c.cfg.Node), c.keys.nodes()}
			if e := c.rdb.Eval(ctx, deregisterScript, keys, c.cfg.Node, `"instance":"`+c.instance+`"`).Err(); e != nil && !errors.Is(e, redis.Nil) {
				err = errors.Join(err, fmt.Errorf("cluster: removing node %s from the registry: %w", c.cfg.Node, e))
			}
		}
		err = errors.Join(err, c.rdb.Close())
	})
	return err
}

// deregisterScript removes the node's record only while it is this process's (an upgrade's
// new process may have written its own under the same name). KEYS: node record, nodes
// zset; ARGV: node name, the record's instance field as JSON.
const deregisterScript = `local v = redis.call('GET', KEYS[1])
if v and string.find(v, ARGV[2], 1, true) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1`

// Node returns this node's name.
func (c *Cluster) Node() string { return c.cfg.Node }

// SessionTTL returns the TTL of session records.
func (c *Cluster) SessionTTL() time.Duration { return c.cfg.SessionTTL }

// RedisTimeout returns the bound of every Redis call.
func (c *Cluster) RedisTimeout() time.Duration { return c.cfg.RedisTimeout }

// Up reports whether Redis answers commands and the bus is subscribed. While it is false
// the node serves what it holds; messages to other nodes are lost.
func (c *Cluster) Up() bool { return c.cmdOK.Load() && c.subOK.Load() }

// LastError returns the last Redis error and when it happened ("" and zero before any).
// While Up is false it says why.
func (c *Cluster) LastError() (string, time.Time) {
	at := c.errAt.Load()
	if at == 0 {
		return "", time.Time{}
	}
	return *c.lastErr.Load(), time.Unix(0, at)
}

// lastError is LastError's text without the time (no allocation: health checks).
func (c *Cluster) lastError() string { return *c.lastErr.Load() }

// StateText returns "up", or "down: <last error>"; for health checks it allocates nothing
// while up.
func (c *Cluster) StateText() string {
	if c.Up() {
		return "up"
	}
	return "down: " + c.lastError()
}

// DownReason returns the last error when the node is not up (and "" when it is), without
// allocating.
func (c *Cluster) DownReason() string {
	if c.Up() {
		return ""
	}
	if !c.subOK.Load() && c.cmdOK.Load() {
		return "redis pub/sub not subscribed"
	}
	return c.lastError()
}

// Nodes returns the nodes seen at the last heartbeat (this one included while Redis is
// up), sorted by name. The slice is shared: do not modify it.
func (c *Cluster) Nodes() []NodeInfo { return *c.nodes.Load() }

// NodeCount returns len(Nodes()).
func (c *Cluster) NodeCount() int { return len(*c.nodes.Load()) }

// NodeAlive reports whether name was in the registry at the last heartbeat.
func (c *Cluster) NodeAlive(name string) bool {
	_, ok := (*c.live.Load())[name]
	return ok
}

// NodeAliveNow is NodeAlive confirmed with Redis when the last registry read does not list
// name (a node that joined since, or a registry not read yet): true when its record is in
// Redis now. Bounded by ctx and RedisTimeout; a failed read answers true (not judged).
func (c *Cluster) NodeAliveNow(ctx context.Context, name string) bool {
	if c.NodeAlive(name) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	n, err := c.rdb.Exists(ctx, c.keys.node(name)).Result()
	if err != nil {
		c.fail("reading a node record", err)
		return true
	}
	c.ok()
	return n > 0
}

// Stats are the node's cluster counters.
type Stats struct {
	Published uint64 `json:"published"`    // messages published
	Received  uint64 `json:"received"`     // messages received from other nodes
	Errors    uint64 `json:"redis_errors"` // failed Redis operations
	Dropped   uint64 `json:"dropped"`      // queue entries dropped (queue full, or publishes lost to an outage)
	Queued    int    `json:"queued"`       // entries waiting for the writer
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	return Stats{Published: c.published.Load(), Received: c.received.Load(), Errors: c.errs.Load(),
		Dropped: c.q.dropped.Load(), Queued: c.q.len()}
}

// fail records a failed Redis operation.
func (c *Cluster) fail(what string, err error) {
	c.errs.Add(1)
	c.cmdOK.Store(false)
	msg := what + ": " + err.Error()
	c.lastErr.Store(&msg)
	now := time.Now().UnixNano()
	c.errAt.Store(now)
	c.logState()
	// Repeated errors while down: one line per 10 seconds.
	if last := c.logAt.Load(); now-last > int64(10*time.Second) && c.logAt.CompareAndSwap(last, now) {
		c.cfg.Logger.Warn("cluster: redis error", "node", c.cfg.Node, "op", what, "err", err)
	}
}

// ok records a successful command.
func (c *Cluster) ok() {
	c.cmdOK.Store(true)
	c.logState()
}

// logState logs transitions between up and down.
func (c *Cluster) logState() {
	up := c.Up()
	if c.upWas.Swap(up) == up {
		return
	}
	if up {
		c.cfg.Logger.Info("cluster: redis up", "node", c.cfg.Node)
	} else {
		c.cfg.Logger.Warn("cluster: redis down; serving node-local sessions only", "node", c.cfg.Node, "err", c.lastError())
	}
}

// sleep waits d or until Close; false means closing.
func (c *Cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// goredisLogger sends go-redis's own log lines (reconnect attempts) to Debug.
type goredisLogger struct{ log *slog.Logger }

func (l goredisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.Debug("go-redis: " + fmt.Sprintf(format, v...))
	}
}

var loggerOnce sync.Once

// useLogger routes go-redis's process-wide logger (it writes to stderr by default) to the
// first cluster's logger at debug level.
func useLogger(log *slog.Logger) {
	loggerOnce.Do(func() { redis.SetLogger(goredisLogger{log}) })
}
