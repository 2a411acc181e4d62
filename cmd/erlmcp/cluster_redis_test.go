package main

// Cluster mode through a Redis outage (issue 8): nodes keep serving, health and status say so,
// and everything is shared again once Redis is back.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// clusterHealth returns the "cluster" check of a node's /health, and the HTTP status.
func clusterHealth(t *testing.T, n *clusterNode) (map[string]any, int) {
	t.Helper()
	var h struct {
		Status string
		Checks []map[string]any
	}
	code := getJSON(t, n.base+"/health", &h)
	for _, c := range h.Checks {
		if c["name"] == "cluster" {
			return c, code
		}
	}
	t.Fatalf("%s: /health has no cluster check: %+v", n.name, h)
	return nil, code
}

// waitClusterHealth polls the node's cluster check until its status is want.
func waitClusterHealth(t *testing.T, n *clusterNode, want string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, code := clusterHealth(t, n)
		if c["status"] == want {
			if code != 200 {
				t.Fatalf("%s: /health answered %d with the cluster check %s (want 200)", n.name, code, want)
			}
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: cluster check still %v after %v, want %s: %v", n.name, c["status"], timeout, want, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusCluster is the cluster part of `erlmcp status -json`.
type statusCluster struct {
	Node      string `json:"node"`
	Redis     string `json:"redis"`
	LastError string `json:"last_error"`
	Nodes     []struct {
		Name     string `json:"name"`
		Sessions int    `json:"sessions"`
	} `json:"nodes"`
}

func nodeStatus(t *testing.T, n *clusterNode) statusCluster {
	t.Helper()
	out, err := n.admin("status", "-json")
	if err != nil {
		t.Fatalf("%s: erlmcp status -json: %v: %s", n.name, err, out)
	}
	var s struct{ Cluster *statusCluster }
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Cluster == nil {
		t.Fatalf("%s: erlmcp status -json has no cluster part (%v): %s", n.name, err, out)
	}
	return *s.Cluster
}

// Redis stopped mid-run: every node keeps serving initialize and tools/call on its own,
// within the Redis timeout; /health says the cluster check is degraded (HTTP 200, /ready
// still 200) and `erlmcp status` says Redis is down. Redis back: healthy again, and
// sessions are shared again.
func TestClusterRedisOutage(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"})
	lb := startHAProxy(t, hostports(nodes))
	for _, n := range nodes {
		waitClusterHealth(t, n, "healthy", 10*time.Second)
	}
	before, _ := newSession(t, nodes[0].url)
	waitRedisSession(t, r, testPrefix(t), before.id, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Seen from b: both nodes, a with the session it holds.
		st := nodeStatus(t, nodes[1])
		sessions := map[string]int{}
		for _, n := range st.Nodes {
			sessions[n.Name] = n.Sessions
		}
		if len(st.Nodes) == 2 && st.Redis == "up" && sessions["a"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erlmcp status on b: want redis up, 2 nodes seen, a with its session: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, _ := metricValue(t, nodes[0].metrics, "erlmcp_cluster_nodes"); v != 2 {
		t.Errorf("erlmcp_cluster_nodes on a: %v, want 2", v)
	}

	r.Kill()

	// Serving locally, never blocked past the Redis timeout (250 ms; 2 s allows a slow box).
	const bound = 2 * time.Second
	for round := 0; round < 3; round++ {
		for _, n := range nodes {
			start := time.Now()
			s, _ := newSession(t, n.url)
			a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "local"}})
			if toolText(a) != "local" {
				t.Fatalf("%s with Redis down: %s", n.name, a.Body)
			}
			if took := time.Since(start); took > bound {
				t.Errorf("%s: initialize + notifications/initialized + tools/call took %v with Redis down (bound %v)", n.name, took, bound)
			}
			if a := statelessCall(t, n.url, "tools/call", "echo", map[string]any{"name": "echo", "arguments": map[string]any{"text": "x"}}); a.Status != 200 || a.Took > bound {
				t.Errorf("%s: stateless tools/call with Redis down: %d in %v: %s", n.name, a.Status, a.Took, a.Body)
			}
		}
		if a := before.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "held"}}); a.Took > bound {
			t.Errorf("a session node a holds took %v with Redis down", a.Took)
		}
	}
	// A session the node does not hold cannot be re-hydrated: a prompt 404 (the client
	// initializes again).
	if a := before.at(nodes[1].url).call("ping", nil); a.Took > bound || a.Status != 404 {
		t.Errorf("node b, Redis down, session held by a: %d in %v: %s", a.Status, a.Took, a.Body)
	}
	// Made during the outage: its record is written once Redis is back.
	during, _ := newSession(t, nodes[0].url)
	during.mustCall("resources/subscribe", map[string]any{"uri": noteURI})
	// Through haproxy too: every node stays in rotation.
	for i := 0; i < 4; i++ {
		if a := statelessCall(t, lb.url, "tools/call", "echo", map[string]any{"name": "echo", "arguments": map[string]any{"text": "lb"}}); a.Status != 200 {
			t.Fatalf("through haproxy with Redis down: %d %s", a.Status, a.Body)
		}
	}
	for _, n := range nodes {
		c := waitClusterHealth(t, n, "degraded", 10*time.Second)
		t.Logf("%s with Redis down: %v", n.name, c)
		if code := getJSON(t, n.base+"/ready", nil); code != 200 {
			t.Errorf("%s: /ready %d with Redis down: a Redis outage must not take nodes out of rotation", n.name, code)
		}
		if v, ok := metricValue(t, n.metrics, "erlmcp_cluster_redis_up"); !ok || v != 0 {
			t.Errorf("%s: erlmcp_cluster_redis_up %v (present %v) with Redis down", n.name, v, ok)
		}
		st := nodeStatus(t, n)
		if st.Redis != "down" || st.LastError == "" || st.Node != n.name {
			t.Errorf("%s: erlmcp status with Redis down: %+v", n.name, st)
		}
		out, _ := n.admin("status")
		if !strings.Contains(out, "redis down") {
			t.Errorf("%s: erlmcp status text does not say redis down:\n%s", n.name, out)
		}
	}
	lb.waitStatus(2*time.Second, func(st map[string]string) bool {
		return strings.HasPrefix(st["node1"], "UP") && strings.HasPrefix(st["node2"], "UP")
	}, "both nodes still UP with Redis down")

	r.Restart()
	for _, n := range nodes {
		waitClusterHealth(t, n, "healthy", 15*time.Second)
		if v, _ := metricValue(t, n.metrics, "erlmcp_cluster_redis_up"); v != 1 {
			t.Errorf("%s: erlmcp_cluster_redis_up %v after Redis came back", n.name, v)
		}
		if st := nodeStatus(t, n); st.Redis != "up" {
			t.Errorf("%s: erlmcp status after Redis came back: %+v", n.name, st)
		}
	}
	// The session made during the outage is shared now, subscription included.
	waitRedisSession(t, r, testPrefix(t), during.id, noteURI)
	if a := during.at(nodes[1].url).mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "late"}}); toolText(a) != "late" {
		t.Fatalf("session made on a during the outage, on b after it: %s", a.Body)
	}
	// Shared again: a session made on a now is re-hydrated on b.
	after, _ := newSession(t, nodes[0].url)
	after.mustCall("logging/setLevel", map[string]any{"level": "debug"})
	waitRedisSession(t, r, testPrefix(t), after.id, "")
	if a := after.at(nodes[1].url).mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "shared"}}); toolText(a) != "shared" {
		t.Fatalf("re-hydration on b after Redis came back: %s", a.Body)
	}
	// And the registry is whole again.
	deadline = time.Now().Add(10 * time.Second)
	for {
		st := nodeStatus(t, nodes[1])
		if len(st.Nodes) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erlmcp status on b 10 s after Redis came back: want 2 nodes seen: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
