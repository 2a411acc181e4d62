package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// ClusterSettings is the `cluster:` section: several erlmcp nodes behind a load balancer
// sharing session-era HTTP sessions, tasks and notifications through Redis (issue 8). Off
// by default; a node with it off never touches Redis and pays nothing for it.
type ClusterSettings struct {
	// Enabled turns cluster mode on (ERLMCP_CLUSTER_ENABLED).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// RedisURL is the Redis every node shares: redis://host:6379/0, rediss://… (TLS),
	// unix:///path/redis.sock?db=0.
	RedisURL string `yaml:"redis_url" json:"redis_url"`
	// Node is this node's name, unique in the cluster. Empty: $ERLMCP_NODE, else the
	// host name and the main port ("web1:8080").
	Node string `yaml:"node" json:"node"`
	// KeyPrefix prefixes every Redis key and channel (clusters sharing a Redis need
	// different ones).
	KeyPrefix string `yaml:"key_prefix" json:"key_prefix"`
	// SessionTTLMs is how long a session's record outlives its last activity; 0 means
	// transports.http.session_idle_timeout_ms (24 h when that is 0, never).
	SessionTTLMs int `yaml:"session_ttl_ms" json:"session_ttl_ms"`
	// HeartbeatMs is the node registry's heartbeat; a node that stops is forgotten after
	// 5 heartbeats.
	HeartbeatMs int `yaml:"heartbeat_ms" json:"heartbeat_ms"`
	// RedisTimeoutMs bounds every Redis call: a request that must read a session from
	// Redis waits at most this long, also while Redis is down.
	RedisTimeoutMs int `yaml:"redis_timeout_ms" json:"redis_timeout_ms"`
	// StateKey names a secret shared by every node (file:/path with mode 0600, or
	// env:NAME; at least 16 bytes) that seals 2026 requestState (input-required round
	// trips), so the retry of a request may reach any node. It is honoured with cluster mode
	// off too: a Redis-less fleet of stateless nodes behind round-robin needs only this.
	// Empty: each node keeps a random key of its own, and in cluster mode the nodes agree
	// on one through Redis.
	StateKey string `yaml:"state_key" json:"state_key"`
}

func defaultCluster() ClusterSettings {
	return ClusterSettings{
		RedisURL:       "redis://127.0.0.1:6379/0",
		KeyPrefix:      cluster.DefaultKeyPrefix,
		HeartbeatMs:    int(cluster.DefaultHeartbeat / time.Millisecond),
		RedisTimeoutMs: int(cluster.DefaultRedisTimeout / time.Millisecond),
	}
}

// applyEnv applies ERLMCP_CLUSTER_ENABLED. (ERLMCP_NODE is the default of cluster.node,
// read when the node is built: a name in the file wins.)
func (cs *ClusterSettings) applyEnv(getenv func(string) string) error {
	if v := getenv("ERLMCP_CLUSTER_ENABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("config: ERLMCP_CLUSTER_ENABLED=%q: want true or false", v)
		}
		cs.Enabled = b
	}
	return nil
}

func (cs *ClusterSettings) validate() error {
	checks := []struct {
		bad      bool
		key, why string
	}{
		{cs.Enabled && strings.TrimSpace(cs.RedisURL) == "", "cluster.redis_url", "must be set when cluster.enabled is true"},
		{cs.KeyPrefix == "", "cluster.key_prefix", "must not be empty"},
		{cs.SessionTTLMs < 0, "cluster.session_ttl_ms", "must be ≥ 0 (0: transports.http.session_idle_timeout_ms)"},
		{cs.HeartbeatMs < 10, "cluster.heartbeat_ms", "must be ≥ 10"},
		{cs.RedisTimeoutMs < 1, "cluster.redis_timeout_ms", "must be ≥ 1"},
		{strings.ContainsAny(cs.Node, " \t\r\n"), "cluster.node", "must not contain white space"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("config: %s %s", c.key, c.why)
		}
	}
	return nil
}

// nodeName is cluster.node, else $ERLMCP_NODE, else host name + ":" + the main port.
func (st *Settings) nodeName(getenv func(string) string) string {
	if st.Cluster.Node != "" {
		return st.Cluster.Node
	}
	if v := strings.TrimSpace(getenv("ERLMCP_NODE")); v != "" {
		return v
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "erlmcp"
	}
	if _, port, err := net.SplitHostPort(st.Transports.TCP.Addr); err == nil && port != "" {
		return host + ":" + port
	}
	return host
}

// clusterConfig turns the settings into the cluster.Config of a node (callbacks are set by
// EnableCluster).
func (st *Settings) clusterConfig(getenv func(string) string, version string) cluster.Config {
	cs := st.Cluster
	ttl := time.Duration(cs.SessionTTLMs) * time.Millisecond
	if ttl == 0 {
		ttl = time.Duration(st.Transports.HTTP.SessionIdleTimeoutMs) * time.Millisecond
	}
	if ttl == 0 {
		ttl = 24 * time.Hour // sessions never expire locally: keep records a day
	}
	return cluster.Config{
		RedisURL:     cs.RedisURL,
		Node:         st.nodeName(getenv),
		Addr:         st.Transports.TCP.Addr,
		Version:      version,
		KeyPrefix:    cs.KeyPrefix,
		SessionTTL:   ttl,
		Heartbeat:    time.Duration(cs.HeartbeatMs) * time.Millisecond,
		RedisTimeout: time.Duration(cs.RedisTimeoutMs) * time.Millisecond,
	}
}
