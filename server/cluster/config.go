package cluster

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Config configures a Cluster. The zero value of every optional field is its documented
// default; New copies it.
type Config struct {
	// RedisURL is any go-redis URL: "redis://host:6379/0", "rediss://…" (TLS),
	// "unix:///path/redis.sock?db=0". Required.
	RedisURL string
	// Node is this node's name, unique in the cluster. Required.
	Node string
	// Addr and Version describe the node in the registry (shown by `erlmcp status`).
	Addr    string
	Version string
	// KeyPrefix prefixes every key and channel, so that clusters (and tests) sharing one
	// Redis never meet. Default "erlmcp:".
	KeyPrefix string
	// SessionTTL is how long a session record lives without activity. Default 10 minutes.
	SessionTTL time.Duration
	// Heartbeat is the node registry's heartbeat; a node record lives 5 heartbeats, so a
	// node that stops is forgotten within 5 heartbeats. Default 1s.
	Heartbeat time.Duration
	// RedisTimeout bounds every Redis call (dial, read, write, pool wait): a request path
	// that reads a record waits at most this long. Default 250ms.
	RedisTimeout time.Duration
	// StateKey, when set, is the secret every node uses to seal 2026 requestState;
	// otherwise the nodes agree on a random one through Redis (SETNX), see StateKey.
	StateKey []byte
	// QueueSize bounds the writer's queue: sessions and tasks with pending changes plus
	// messages to publish. Past it new entries are dropped and counted. Default 65536.
	QueueSize int

	// Sessions returns the record of session id as this node holds it, for full saves
	// (SaveSession, and a refresh that finds the record gone); false when it holds none.
	// Called on the writer goroutine.
	Sessions func(id string) (*SessionRecord, bool)
	// Tasks returns the record of task id when this node runs it (SaveTask). Called on
	// the writer goroutine.
	Tasks func(id string) (*TaskRecord, bool)
	// LocalSessions reports how many sessions this node holds (node registry).
	LocalSessions func() int
	// OnMessage receives every bus message from another node, on the bus goroutine: it
	// must not block.
	OnMessage func(*Message)
	// Tick, when set, is called after every heartbeat on the heartbeat goroutine.
	Tick func()
	// Logger receives state changes (Redis up/down) and throttled errors. Default: discarded.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultKeyPrefix    = "erlmcp:"
	DefaultSessionTTL   = 10 * time.Minute
	DefaultHeartbeat    = time.Second
	DefaultRedisTimeout = 250 * time.Millisecond
	DefaultQueueSize    = 1 << 16
	// nodeTTLBeats is how many heartbeats a node record outlives its last heartbeat.
	nodeTTLBeats = 5
)

func (c *Config) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = DefaultRedisTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LocalSessions == nil {
		c.LocalSessions = func() int { return 0 }
	}
	if c.Sessions == nil {
		c.Sessions = func(string) (*SessionRecord, bool) { return nil, false }
	}
	if c.Tasks == nil {
		c.Tasks = func(string) (*TaskRecord, bool) { return nil, false }
	}
	if c.OnMessage == nil {
		c.OnMessage = func(*Message) {}
	}
}

// redisOptions turns the URL into go-redis options with every wait bounded by
// RedisTimeout: a Redis that is down or slow costs a request at most that long.
func (c *Config) redisOptions() (*redis.Options, error) {
	if strings.TrimSpace(c.RedisURL) == "" {
		return nil, fmt.Errorf("cluster: redis_url is empty (want e.g. redis://127.0.0.1:6379/0 or unix:///run/redis.sock)")
	}
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis_url %q: %w", c.RedisURL, err)
	}
	opt.ClientName = "erlmcp-" + c.Node
	opt.DialTimeout = c.RedisTimeout
	opt.ReadTimeout = c.RedisTimeout
	opt.WriteTimeout = c.RedisTimeout
	opt.PoolTimeout = c.RedisTimeout
	opt.ContextTimeoutEnabled = true
	// One retry, one dial attempt per try: the defaults (3 retries, 5 dial attempts
	// 100ms apart) would hold a request past RedisTimeout while Redis is down.
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	// Cluster-upgrade push notifications are a Redis Enterprise feature; the handshake
	// would only add a round trip (and a log line) to every connection.
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opt, nil
}

// keyspace names the keys and channels of one cluster (prefix included).
type keyspace struct {
	prefix string
}

func (k keyspace) session(id string) string { return k.prefix + "session:" + id }
func (k keyspace) task(id string) string    { return k.prefix + "task:" + id }
func (k keyspace) node(name string) string  { return k.prefix + "node:" + name }
func (k keyspace) nodes() string            { return k.prefix + "nodes" }
func (k keyspace) stateKey() string         { return k.prefix + "state_key" }
func (k keyspace) value(name string) string { return k.prefix + "value:" + name }
func (k keyspace) bus() string              { return k.prefix + "bus" }
func (k keyspace) nodeBus(name string) string {
	return k.prefix + "bus:" + name
}
