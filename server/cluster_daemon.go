package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// The daemon's side of cluster mode: built from the `cluster:` settings by NewDaemon,
// started first by Start, stopped after the drain by Shutdown, shown by /health (check
// "cluster"), `erlmcp status` and the metrics.

// Metric names of cluster mode.
const (
	metricClusterRedisUp      = "erlmcp_cluster_redis_up"
	metricClusterNodes        = "erlmcp_cluster_nodes"
	metricClusterRehydrations = "erlmcp_cluster_rehydrations_total"
	metricClusterPublished    = "erlmcp_cluster_messages_published_total"
	metricClusterReceived     = "erlmcp_cluster_messages_received_total"
	metricClusterRedisErrors  = "erlmcp_cluster_redis_errors_total"
)

// buildCluster puts the server in cluster mode when cluster.enabled is on, and adds the
// "cluster" health check and the cluster metrics. Called by NewDaemon after the
// registrations; it does not contact Redis.
func (d *Daemon) buildCluster() error {
	key, err := d.st.Cluster.loadStateKey()
	if err != nil {
		return err
	}
	d.srv.SetStateKey(key)
	if !d.st.Cluster.Enabled {
		return nil
	}
	cfg := d.st.clusterConfig(os.Getenv, d.build.Version)
	cfg.StateKey = key
	cfg.Logger = d.log
	c, err := d.srv.EnableCluster(cfg)
	if err != nil {
		return err
	}
	d.obs.health.AddCheck("cluster", d.checkCluster)
	if m := d.obs.metrics; m != nil {
		srv := d.srv
		m.Set().RegisterMetricsWriter(func(w io.Writer) {
			up := uint64(0)
			if c.Up() {
				up = 1
			}
			st := c.Stats()
			vm.WriteGaugeUint64(w, metricClusterRedisUp, up)
			vm.WriteGaugeUint64(w, metricClusterNodes, uint64(c.NodeCount()))
			vm.WriteCounterUint64(w, metricClusterRehydrations, srv.Rehydrations())
			vm.WriteCounterUint64(w, metricClusterPublished, st.Published)
			vm.WriteCounterUint64(w, metricClusterReceived, st.Received)
			vm.WriteCounterUint64(w, metricClusterRedisErrors, st.Errors)
		})
	}
	return nil
}

// minStateKey is the shortest cluster.state_key accepted: an HMAC key shorter than 128 bits
// is guessable.
const minStateKey = 16

// loadStateKey reads cluster.state_key (a secret reference); nil when unset.
func (cs *ClusterSettings) loadStateKey() ([]byte, error) {
	if cs.StateKey == "" {
		return nil, nil
	}
	key, err := limits.LoadSecret(cs.StateKey)
	if err != nil {
		return nil, fmt.Errorf("config: cluster.state_key: %w", err)
	}
	if len(key) < minStateKey {
		return nil, fmt.Errorf("config: cluster.state_key: the secret is %d bytes; want at least %d (e.g. openssl rand -hex 32)", len(key), minStateKey)
	}
	return key, nil
}

// startCluster joins the cluster: one heartbeat (bounded by cluster.redis_timeout; a
// Redis that is down leaves the node serving locally, degraded), then the background work.
func (d *Daemon) startCluster() {
	c := d.srv.Cluster()
	if c == nil {
		return
	}
	c.Start()
	redis := "up"
	if msg := c.DownReason(); msg != "" {
		redis = "down: " + msg
	}
	d.log.Info("cluster mode", "node", c.Node(), "redis", redis, "nodes", c.NodeCount(), "session_ttl", c.SessionTTL().String())
}

// stopCluster writes what is pending and leaves the registry (bounded by ctx and a few
// Redis timeouts: a Redis that is down cannot hold up the stop).
func (d *Daemon) stopCluster(ctx context.Context) error {
	c := d.srv.Cluster()
	if c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(2*time.Second, 8*c.RedisTimeout()))
	defer cancel()
	return c.Close(ctx)
}

// checkCluster is the "cluster" health check: degraded while Redis is unreachable (the
// node serves the sessions it holds; /health stays 200 and /ready true).
func (d *Daemon) checkCluster() CheckResult {
	c := d.srv.Cluster()
	r := Healthy()
	up := 1.0
	if reason := c.DownReason(); reason != "" {
		r = Degraded("redis unreachable: serving node-local sessions only").AddText("redis_error", reason)
		up = 0
	}
	return r.AddText("node", c.Node()).
		Add("redis_up", up).
		Add("nodes", float64(c.NodeCount())).
		Add("sessions_local", float64(d.srv.sessions.len())).
		Add("rehydrations", float64(d.srv.Rehydrations()))
}

// ClusterStatus is the cluster part of `erlmcp status`.
type ClusterStatus struct {
	// Node is this node's name.
	Node string `json:"node"`
	// Redis is "up" or "down"; LastError says why it is down (or what failed last).
	Redis       string `json:"redis"`
	LastError   string `json:"last_error,omitempty"`
	LastErrorAt string `json:"last_error_at,omitempty"`
	// SessionsLocal counts the sessions this node holds.
	SessionsLocal int `json:"sessions_local"`
	// Nodes are the nodes seen at the last heartbeat, with their sessions each.
	Nodes        []cluster.NodeInfo `json:"nodes"`
	Rehydrations uint64             `json:"rehydrations"`
	cluster.Stats
}

// clusterStatus returns the cluster part of Status, or nil when cluster mode is off.
func (d *Daemon) clusterStatus() *ClusterStatus {
	c := d.srv.Cluster()
	if c == nil {
		return nil
	}
	s := &ClusterStatus{Node: c.Node(), Redis: "up", SessionsLocal: d.srv.sessions.len(),
		Nodes: append([]cluster.NodeInfo(nil), c.Nodes()...), Rehydrations: d.srv.Rehydrations(), Stats: c.Stats()}
	if !c.Up() {
		s.Redis = "down"
	}
	if msg, at := c.LastError(); msg != "" {
		s.LastError, s.LastErrorAt = msg, at.UTC().Format(time.RFC3339)
	}
	return s
}
