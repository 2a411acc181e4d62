package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server/cluster"
	"github.com/erlmcp/erlmcp-go/server/cluster/redistest"
)

// clusterCheck returns the "cluster" check of the daemon's /health (which must answer 200).
func clusterCheck(t testing.TB, d *Daemon) map[string]any {
	t.Helper()
	code, _, body := get(t, "http://"+d.TCPAddr().String()+"/health")
	if code != 200 {
		t.Fatalf("/health: %d %s", code, body)
	}
	var doc healthDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	for _, c := range doc.Checks {
		if c["name"] == "cluster" {
			return c
		}
	}
	t.Fatalf("/health has no cluster check: %s", body)
	return nil
}

// metricValue returns the value of an unlabelled metric on the daemon's /metrics.
func metricValue(t testing.TB, d *Daemon, name string) string {
	t.Helper()
	_, _, body := get(t, "http://"+d.MetricsAddr().String()+"/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// TestClusterDaemonRedisOutage: two daemons in cluster mode. Redis stopped: both keep
// serving what they hold and new sessions, /health stays 200 with the cluster check
// degraded (and /ready true), status and metrics say Redis is down; a session of the other
// node is 404 within the Redis timeout. Redis back: healthy again by itself, and the
// session made during the outage reaches Redis so the other node can serve it.
func TestClusterDaemonRedisOutage(t *testing.T) {
	r := redistest.Start(t)
	prefix := fmt.Sprintf("t:%s:%d:", t.Name(), time.Now().UnixNano())
	daemon := func(name string) *Daemon {
		return startDaemon(t, func(st *Settings) {
			st.Cluster = ClusterSettings{Enabled: true, RedisURL: r.URL(), Node: name, KeyPrefix: prefix,
				HeartbeatMs: 50, RedisTimeoutMs: 200}
		})
	}
	a, b := daemon("a"), daemon("b")
	for _, d := range []*Daemon{a, b} {
		waitFor(t, 5*time.Second, "both nodes up", func() bool { return d.Server().Cluster().Up() && d.Server().Cluster().NodeCount() == 2 })
	}
	mcp := func(d *Daemon) string { return "http://" + d.TCPAddr().String() + "/mcp" }

	ca := clusterCheck(t, a)
	if ca["status"] != "healthy" || ca["node"] != "a" || ca["redis_up"] != 1.0 || ca["nodes"] != 2.0 {
		t.Fatalf("cluster check = %v", ca)
	}
	if v := metricValue(t, a, "erlmcp_cluster_redis_up"); v != "1" {
		t.Fatalf("erlmcp_cluster_redis_up = %s", v)
	}
	if v := metricValue(t, a, "erlmcp_cluster_nodes"); v != "2" {
		t.Fatalf("erlmcp_cluster_nodes = %s", v)
	}
	st := a.Status().Cluster
	if st == nil || st.Node != "a" || st.Redis != "up" || len(st.Nodes) != 2 || st.Nodes[1].Name != "b" {
		t.Fatalf("status = %+v", st)
	}
	onA := newHTTPClient(t, mcp(a))
	onA.initialize()
	waitFor(t, 3*time.Second, "a's session in Redis", func() bool {
		rec, _ := a.Server().Cluster().GetSession(context.Background(), onA.session)
		return rec != nil
	})

	r.Kill()
	for _, d := range []*Daemon{a, b} {
		waitFor(t, 5*time.Second, "the cluster check degraded", func() bool { return clusterCheck(t, d)["status"] == "degraded" })
		if code, _, body := get(t, "http://"+d.TCPAddr().String()+"/ready"); code != 200 {
			t.Fatalf("/ready during the outage: %d %s", code, body)
		}
	}
	if c := clusterCheck(t, a); c["redis_up"] != 0.0 || c["redis_error"] == nil {
		t.Fatalf("cluster check during the outage = %v", c)
	}
	if st := a.Status().Cluster; st.Redis != "down" || st.LastError == "" {
		t.Fatalf("status during the outage = %+v", st)
	}
	if v := metricValue(t, a, "erlmcp_cluster_redis_up"); v != "0" {
		t.Fatalf("erlmcp_cluster_redis_up during the outage = %s", v)
	}
	// Node-local operation: a's session, a new session on b.
	if code, body := onA.rpc(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}`); code != 200 || !strings.Contains(body, "still here") {
		t.Fatalf("a's session during the outage: %d %s", code, body)
	}
	onB := newHTTPClient(t, mcp(b))
	onB.initialize()
	if code, body := onB.rpc(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); code != 200 || !strings.Contains(body, "write_note") {
		t.Fatalf("b's new session during the outage: %d %s", code, body)
	}
	start := time.Now()
	if code, _ := onA.on(&testNode{url: mcp(b)}).rpc(`{"jsonrpc":"2.0","id":2,"method":"ping"}`); code != 404 {
		t.Fatalf("a's session on b during the outage: %d, want 404", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a request that needed Redis took %s during the outage (redis_timeout_ms 200)", d)
	}

	r.Restart()
	for _, d := range []*Daemon{a, b} {
		waitFor(t, 5*time.Second, "the cluster check healthy again", func() bool { return clusterCheck(t, d)["status"] == "healthy" })
	}
	// The session b made during the outage is written by b's writer once Redis is back.
	waitFor(t, 5*time.Second, "b's outage session in Redis", func() bool {
		rec, err := b.Server().Cluster().GetSession(context.Background(), onB.session)
		return err == nil && rec.Owner == "b"
	})
	if code, body := onB.on(&testNode{url: mcp(a)}).rpc(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"moved"}}}`); code != 200 || !strings.Contains(body, "moved") {
		t.Fatalf("b's session on a after the outage: %d %s", code, body)
	}
	if n := a.Server().Rehydrations(); n != 1 {
		t.Fatalf("a re-hydrated %d sessions, want 1", n)
	}
	if v := metricValue(t, a, "erlmcp_cluster_rehydrations_total"); v != "1" {
		t.Fatalf("erlmcp_cluster_rehydrations_total = %s", v)
	}
	if v := metricValue(t, b, "erlmcp_cluster_redis_errors_total"); v == "0" {
		t.Fatal("the outage counted no Redis errors")
	}
}

// TestClusterDaemonStopLeavesRegistry: a daemon that stops removes its registry record at
// once (the others stop counting it), and keeps its sessions' records for them.
func TestClusterDaemonStopLeavesRegistry(t *testing.T) {
	r := redistest.Start(t)
	prefix := fmt.Sprintf("t:%s:%d:", t.Name(), time.Now().UnixNano())
	set := func(name string) func(*Settings) {
		return func(st *Settings) {
			st.Cluster = ClusterSettings{Enabled: true, RedisURL: r.URL(), Node: name, KeyPrefix: prefix, HeartbeatMs: 1000, RedisTimeoutMs: 200}
		}
	}
	a, b := startDaemon(t, set("a")), startDaemon(t, set("b"))
	waitFor(t, 5*time.Second, "two nodes", func() bool { return b.Server().Cluster().NodeCount() == 2 && a.Server().Cluster().Up() })
	hc := newHTTPClient(t, "http://"+a.TCPAddr().String()+"/mcp")
	hc.initialize()
	waitFor(t, 3*time.Second, "the record", func() bool {
		_, err := a.Server().Cluster().GetSession(context.Background(), hc.session)
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Within one heartbeat of b (5 would be the expiry of a crashed node).
	waitFor(t, 1500*time.Millisecond, "a gone from b's registry", func() bool { return !b.Server().Cluster().NodeAlive("a") })
	if _, err := b.Server().Cluster().GetSession(context.Background(), hc.session); err != nil {
		t.Fatalf("a's session record after a stopped: %v", err)
	}
	if _, err := a.Server().Cluster().GetSession(context.Background(), hc.session); err == nil || err == cluster.ErrNotFound {
		t.Fatalf("a's cluster client still answers after Shutdown: %v", err)
	}
}

// TestClusterSettings: defaults, the environment, validation and the node name.
func TestClusterSettings(t *testing.T) {
	st := DefaultSettings()
	if st.Cluster.Enabled || st.Cluster.RedisURL != "redis://127.0.0.1:6379/0" || st.Cluster.KeyPrefix != "erlmcp:" ||
		st.Cluster.HeartbeatMs != 1000 || st.Cluster.RedisTimeoutMs != 250 || st.Cluster.SessionTTLMs != 0 {
		t.Fatalf("defaults = %+v", st.Cluster)
	}
	env := map[string]string{"ERLMCP_CLUSTER_ENABLED": "true", "ERLMCP_NODE": "env-node"}
	getenv := func(k string) string { return env[k] }
	if err := st.applyEnv(getenv); err != nil || !st.Cluster.Enabled {
		t.Fatalf("ERLMCP_CLUSTER_ENABLED: %v %+v", err, st.Cluster)
	}
	if n := st.nodeName(getenv); n != "env-node" {
		t.Fatalf("node from ERLMCP_NODE = %q", n)
	}
	st.Cluster.Node = "file-node"
	if n := st.nodeName(getenv); n != "file-node" {
		t.Fatalf("cluster.node does not win over ERLMCP_NODE: %q", n)
	}
	st.Cluster.Node = ""
	if n := st.nodeName(func(string) string { return "" }); !strings.HasSuffix(n, ":8080") {
		t.Fatalf("default node name = %q, want host:8080", n)
	}
	cfg := st.clusterConfig(getenv, "v1")
	if cfg.SessionTTL != 10*time.Minute || cfg.Heartbeat != time.Second || cfg.RedisTimeout != 250*time.Millisecond || cfg.Version != "v1" {
		t.Fatalf("cluster config = %+v", cfg)
	}
	if err := st.Set("cluster.session_ttl_ms", "5000"); err != nil || st.clusterConfig(getenv, "").SessionTTL != 5*time.Second {
		t.Fatalf("-set cluster.session_ttl_ms: %v", err)
	}
	if err := (&Settings{Cluster: defaultCluster()}).applyEnv(func(k string) string {
		if k == "ERLMCP_CLUSTER_ENABLED" {
			return "maybe"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "ERLMCP_CLUSTER_ENABLED") {
		t.Fatalf("bad ERLMCP_CLUSTER_ENABLED: %v", err)
	}
	for _, tc := range []struct {
		set, val, want string
	}{
		{"cluster.heartbeat_ms", "5", "cluster.heartbeat_ms"},
		{"cluster.redis_timeout_ms", "0", "cluster.redis_timeout_ms"},
		{"cluster.key_prefix", "", "cluster.key_prefix"},
		{"cluster.node", "a b", "cluster.node"},
	} {
		st := DefaultSettings()
		if err := st.Set(tc.set, tc.val); err != nil {
			t.Fatal(err)
		}
		if err := st.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: Validate = %v", tc.set, tc.val, err)
		}
	}
	bad := DefaultSettings()
	bad.Cluster.Enabled, bad.Cluster.RedisURL = true, "http://nope"
	bad.Transports.TCP.Addr = "127.0.0.1:0"
	if _, err := NewDaemon(bad, BuildInfo{}, nil); err == nil || !strings.Contains(err.Error(), "redis_url") {
		t.Fatalf("NewDaemon with a bad redis_url: %v", err)
	}
}
