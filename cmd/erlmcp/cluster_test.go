package main

// Cluster mode end to end (issue 8): real erlmcp binaries in cluster mode, a real
// redis-server on a unix socket, and a real haproxy running deploy/haproxy/haproxy.cfg in
// front. The official conformance suite through haproxy is .ci/conformance-cluster.sh.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const noteURI = "erlmcp://demo/note"

// indexOf returns the index of haproxy server name (node1, node2, ...) in nodes.
func indexOf(t *testing.T, backend string, nodes []*clusterNode) int {
	t.Helper()
	for i := range nodes {
		if serverName(i) == backend {
			return i
		}
	}
	t.Fatalf("answer did not come through haproxy from a known node: X-Erlmcp-Backend %q", backend)
	return -1
}

// hostports returns the main addresses of nodes, in order.
func hostports(nodes []*clusterNode) []string {
	hp := make([]string, len(nodes))
	for i, n := range nodes {
		hp[i] = n.hostport()
	}
	return hp
}

// A session created through node A (via haproxy) keeps working when A is killed: the next
// request lands on another node, which re-hydrates it from Redis — same Mcp-Session-Id,
// tools/call answers, the subscription made on A still delivers, and later requests stick
// to the new node.
func TestClusterSessionSurvivesNodeKill(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b", "c"})
	lb := startHAProxy(t, hostports(nodes))

	s, created := newSession(t, lb.url)
	ai := indexOf(t, created, nodes)
	if a := s.mustCall("resources/subscribe", map[string]any{"uri": noteURI}); a.Backend != created {
		t.Fatalf("resources/subscribe went to %s, not to %s which created the session: no stickiness", a.Backend, created)
	}
	for i := 0; i < 3; i++ {
		a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "before"}})
		if a.Backend != created || toolText(a) != "before" {
			t.Fatalf("tools/call %d before the kill: node %s (want %s), text %q", i, a.Backend, created, toolText(a))
		}
	}
	// Let the writer flush the session's record (it is written asynchronously).
	waitRedisSession(t, r, testPrefix(t), s.id, noteURI)

	nodes[ai].crash()

	a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "after"}})
	if a.Backend == created || toolText(a) != "after" {
		t.Fatalf("tools/call after killing %s: node %s, text %q: %s", created, a.Backend, toolText(a), a.Body)
	}
	if id := a.Header.Get("Mcp-Session-Id"); id != "" && id != s.id {
		t.Fatalf("the session changed id on failover: %s -> %s", s.id, id)
	}
	bi := indexOf(t, a.Backend, nodes)
	if v, _ := metricValue(t, nodes[bi].metrics, "erlmcp_cluster_rehydrations_total"); v < 1 {
		t.Errorf("%s answered for a session it did not hold without a re-hydration (erlmcp_cluster_rehydrations_total %v)", nodes[bi].name, v)
	}
	for i := 0; i < 3; i++ {
		if a := s.mustCall("ping", nil); a.Backend != serverName(bi) {
			t.Fatalf("request %d after failover went to %s, not %s: haproxy did not re-stick the session", i, a.Backend, serverName(bi))
		}
	}

	// The subscription made on the dead node still delivers, through a GET stream on the
	// new node, for a note written on the third node.
	st := s.openStream()
	if st.Backend != serverName(bi) {
		t.Fatalf("GET stream on %s, requests on %s", st.Backend, serverName(bi))
	}
	ci := 3 - ai - bi
	if a := statelessCall(t, nodes[ci].url, "tools/call", "write_note", map[string]any{"name": "write_note", "arguments": map[string]any{"text": "after failover"}}); a.Status != 200 || a.Reply == nil || a.Reply.Error != nil {
		t.Fatalf("write_note on %s: %d %s", nodes[ci].name, a.Status, a.Body)
	}
	if n := st.waitCount("notifications/resources/updated", noteURI, 1, 5*time.Second); n != 1 {
		t.Fatalf("resources/updated on the failed-over session's stream: %d, want 1; stream:\n%s", n, st.all())
	}
}

// waitRedisSession waits until the session's record is in Redis, with uri among its
// subscriptions when uri is not "" (a hash field per subscription, named after the URI).
func waitRedisSession(t *testing.T, r *redisProc, prefix, id, uri string) {
	t.Helper()
	key := prefix + "session:" + id
	deadline := time.Now().Add(5 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		n, err := r.do("EXISTS", key)
		last = n
		if err == nil && n == ":1" {
			if uri == "" {
				return
			}
			script := "for _,f in ipairs(redis.call('HKEYS',KEYS[1])) do if string.find(f, ARGV[1], 1, true) then return 1 end end return 0"
			if ok, _ := r.do("EVAL", script, "1", key, uri); ok == ":1" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session %s not in Redis under %q after 5 s (EXISTS %s; subscription %q)", id, key, last, uri)
}

// The session's log level is part of what survives a failover: set on node A, observed on
// node B after A is killed (the conformance profile's test_logging_tool logs at info, which
// a session without a level never sees).
func TestClusterLogLevelSurvivesNodeKill(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"}, "--profile", "conformance")
	lb := startHAProxy(t, hostports(nodes))

	logged := func(a rpcAnswer) bool {
		for _, n := range a.Notes {
			if n.Method == "notifications/message" {
				return true
			}
		}
		return false
	}
	s, created := newSession(t, lb.url)
	ai := indexOf(t, created, nodes)
	if a := s.mustCall("tools/call", map[string]any{"name": "test_logging_tool"}); logged(a) {
		t.Fatalf("log notification before logging/setLevel: %s", a.Body)
	}
	s.mustCall("logging/setLevel", map[string]any{"level": "info"})
	if a := s.mustCall("tools/call", map[string]any{"name": "test_logging_tool"}); !logged(a) || a.Backend != created {
		t.Fatalf("no log notification at level info on %s (answer from %s): %s", created, a.Backend, a.Body)
	}
	waitRedisField(t, r, testPrefix(t)+"session:"+s.id, "info")

	nodes[ai].crash()
	a := s.mustCall("tools/call", map[string]any{"name": "test_logging_tool"})
	if a.Backend == created {
		t.Fatalf("answer from the killed node %s", created)
	}
	if !logged(a) {
		t.Fatalf("after failover to %s the session lost its log level (no notifications/message): %s", a.Backend, a.Body)
	}
	// The control: a session that never set a level hears nothing on that node either.
	s2, _ := newSession(t, lb.url)
	if a := s2.mustCall("tools/call", map[string]any{"name": "test_logging_tool"}); logged(a) {
		t.Fatalf("a session without a level got a log notification: %s", a.Body)
	}
}

// waitRedisField waits until some field of hash key has value want.
func waitRedisField(t *testing.T, r *redisProc, key, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	script := "for _,v in ipairs(redis.call('HVALS',KEYS[1])) do if v == ARGV[1] then return 1 end end return 0"
	for time.Now().Before(deadline) {
		if ok, err := r.do("EVAL", script, "1", key, want); err == nil && ok == ":1" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no field of %s is %q after 5 s", key, want)
}

// A resource update raised on node C reaches a subscriber whose GET stream is on node B,
// exactly once, although C holds a copy of the session too; a session that did not
// subscribe hears nothing; DELETE on B ends the copy on C.
func TestClusterResourceUpdateAcrossNodes(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b", "c"})
	lb := startHAProxy(t, hostports(nodes))

	s, created := newSession(t, lb.url)
	bi := indexOf(t, created, nodes)
	s.mustCall("resources/subscribe", map[string]any{"uri": noteURI})
	st := s.openStream()
	if st.Backend != created {
		t.Fatalf("GET stream on %s, session on %s: no stickiness", st.Backend, created)
	}
	other, _ := newSession(t, lb.url) // not subscribed: a control
	ost := other.openStream()

	ci, di := (bi+1)%3, (bi+2)%3
	onC := s.at(nodes[ci].url) // the same session, straight at node C: C makes a copy
	waitRedisSession(t, r, testPrefix(t), s.id, noteURI)
	onC.mustCall("ping", nil)

	if a := onC.mustCall("tools/call", map[string]any{"name": "write_note", "arguments": map[string]any{"text": "one"}}); a.Reply.Result == nil {
		t.Fatal(a.Body)
	}
	if n := st.waitCount("notifications/resources/updated", noteURI, 1, 5*time.Second); n != 1 {
		t.Fatalf("resources/updated raised on %s, stream on %s: got %d, want 1; stream:\n%s", nodes[ci].name, nodes[bi].name, n, st.all())
	}
	// Told of the update, the subscriber reads the new text through its own node.
	if a := s.mustCall("resources/read", map[string]any{"uri": noteURI}); a.Backend != created || !strings.Contains(string(a.Reply.Result), `"text":"one"`) {
		t.Fatalf("resources/read %s via %s after write_note on %s: %s", noteURI, a.Backend, nodes[ci].name, a.Body)
	}
	// A second update, raised statelessly on the third node.
	if a := statelessCall(t, nodes[di].url, "tools/call", "write_note", map[string]any{"name": "write_note", "arguments": map[string]any{"text": "two"}}); a.Status != 200 || a.Reply == nil || a.Reply.Error != nil {
		t.Fatalf("write_note on %s: %d %s", nodes[di].name, a.Status, a.Body)
	}
	if n := st.waitCount("notifications/resources/updated", noteURI, 2, 5*time.Second); n != 2 {
		t.Fatalf("after two writes on two other nodes the stream on %s has %d resources/updated, want 2:\n%s", nodes[bi].name, n, st.all())
	}
	time.Sleep(time.Second) // duplicates, if any, arrive within this
	if n := st.count("notifications/resources/updated", noteURI); n != 2 {
		t.Fatalf("duplicates: %d resources/updated for 2 writes:\n%s", n, st.all())
	}
	if n := ost.count("notifications/resources/updated", ""); n != 0 {
		t.Fatalf("a session that did not subscribe got %d resources/updated:\n%s", n, ost.all())
	}

	// DELETE through haproxy (node B) ends the session everywhere: C's copy too.
	req, _ := http.NewRequest("DELETE", lb.url, nil)
	req.Header.Set("Mcp-Session-Id", s.id)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := onC.call("ping", nil)
		if a.Status == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after DELETE on %s the session still answers on %s: %d %s", nodes[bi].name, nodes[ci].name, a.Status, a.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := s.at(nodes[di].url).call("ping", nil); a.Status != 404 {
		t.Fatalf("after DELETE a node that never held the session re-hydrated it: %d %s", a.Status, a.Body)
	}
}

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
		st := nodeStatus(t, nodes[0])
		if len(st.Nodes) == 2 && st.Redis == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erlmcp status on a: want redis up and 2 nodes seen: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}

	r.stop()

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

	r.start()
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

// The shipped load-balancer configs are valid as shipped and with the variables the
// tests and deployments set.
func TestLoadBalancerConfigsValid(t *testing.T) {
	needCommands(t, "haproxy")
	for _, env := range [][]string{
		nil,
		{"ERLMCP_LB_SERVER2=", "ERLMCP_LB_SERVER3=", "ERLMCP_LB_STICKY=off"},
		{"ERLMCP_LB_SERVER4=127.0.0.1:9", "ERLMCP_LB_SERVER5=127.0.0.1:10", "ERLMCP_LB_SERVER6=127.0.0.1:11", "ERLMCP_LB_BIND=127.0.0.1:1"},
	} {
		cmd := exec.Command("haproxy", "-c", "-f", haproxyCfg)
		cmd.Env = append(cmd.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Configuration file is valid") {
			t.Errorf("haproxy -c with %v: %v\n%s", env, err, out)
		}
	}
	needCommands(t, "nginx")
	dir := t.TempDir()
	conf := nginxMainConf(t, dir, "../../deploy/nginx/erlmcp.conf")
	if out, err := exec.Command("nginx", "-t", "-p", dir, "-c", conf, "-e", "stderr").CombinedOutput(); err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

// nginxMainConf writes a minimal nginx.conf in dir (pid, temp paths and logs inside it)
// that includes the snippet, and returns its path.
func nginxMainConf(t *testing.T, dir, snippet string) string {
	t.Helper()
	abs, err := filepath.Abs(snippet)
	if err != nil {
		t.Fatal(err)
	}
	conf := dir + "/nginx.conf"
	body := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log stderr;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  include %[2]s;
}
`, dir, abs)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// Draining: `erlmcp upgrade` hands the listening socket to the new process, so haproxy sees
// no gap and the session, unknown to the new process, is re-hydrated from Redis under the
// same node; `erlmcp stop` closes the listener and turns /ready false, haproxy retries the
// next request on the other node (which re-hydrates the session) and marks the node DOWN.
func TestClusterUpgradeAndStopBehindHAProxy(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"})
	lb := startHAProxy(t, hostports(nodes))

	s, created := newSession(t, lb.url)
	xi := indexOf(t, created, nodes)
	s.mustCall("logging/setLevel", map[string]any{"level": "debug"})
	waitRedisSession(t, r, testPrefix(t), s.id, "")

	out, err := nodes[xi].admin("upgrade")
	if err != nil || !strings.Contains(out, "old process stopped") {
		t.Fatalf("upgrade of %s: %v: %s", nodes[xi].name, err, out)
	}
	for i := 0; i < 3; i++ {
		a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "upgraded"}})
		if a.Backend != created || toolText(a) != "upgraded" {
			t.Fatalf("after the upgrade of %s: answer from %s: %s", created, a.Backend, a.Body)
		}
	}
	if st, _ := lb.serverStatus(); !strings.HasPrefix(st[created], "UP") {
		t.Fatalf("haproxy status of %s after the upgrade: %v (an upgrade must not take the node out)", created, st)
	}
	if cs := nodeStatus(t, nodes[xi]); cs.Node != nodes[xi].name {
		t.Fatalf("the upgraded process is node %q, want %q", cs.Node, nodes[xi].name)
	}

	out, err = nodes[xi].admin("stop")
	if err != nil {
		t.Fatalf("stop %s: %v: %s", nodes[xi].name, err, out)
	}
	a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "moved"}})
	if a.Backend == created || toolText(a) != "moved" {
		t.Fatalf("after stopping %s: answer from %s: %s", created, a.Backend, a.Body)
	}
	lb.waitStatus(5*time.Second, func(st map[string]string) bool { return strings.HasPrefix(st[created], "DOWN") }, created+" DOWN after erlmcp stop")
}

// nginx (deploy/nginx/erlmcp.conf, addresses filled in): stateless requests spread over the
// nodes round-robin (the hash key is empty), and session-era requests hash on
// Mcp-Session-Id to one node — not always the one that created the session, which cluster
// mode covers by re-hydrating it there, from the very first request after initialize.
func TestNginxClusterRouting(t *testing.T) {
	needCommands(t, "nginx")
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b", "c"})
	dir := shortTempDir(t, "ngx")
	src, err := os.ReadFile("../../deploy/nginx/erlmcp.conf")
	if err != nil {
		t.Fatal(err)
	}
	var ng *bgProc
	var url string
	for attempt := 0; ; attempt++ {
		port := freeLoopbackPort(t)
		conf := strings.NewReplacer("127.0.0.1:8081", nodes[0].hostport(), "127.0.0.1:8082", nodes[1].hostport(),
			"127.0.0.1:8083", nodes[2].hostport(), "listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port)).Replace(string(src))
		if err := os.WriteFile(dir+"/erlmcp.conf", []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out := &syncBuffer{}
		cmd := exec.Command("nginx", "-p", dir, "-c", nginxMainConf(t, dir, dir+"/erlmcp.conf"), "-e", "stderr")
		cmd.Stdout, cmd.Stderr = out, out
		if ng, err = startBG(cmd); err != nil {
			t.Fatal(err)
		}
		url = fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
		up := false
		for i := 0; i < 200 && !ng.exited(); i++ {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
				c.Close()
				up = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if up {
			break
		}
		ng.stop(2 * time.Second)
		if attempt == 4 {
			t.Fatalf("nginx did not start:\n%s", out.String())
		}
	}
	t.Cleanup(func() { ng.stop(5 * time.Second) })

	seen := map[string]int{}
	for i := 0; i < 9; i++ {
		a := statelessCall(t, url, "tools/call", "echo", map[string]any{"name": "echo", "arguments": map[string]any{"text": "rr"}})
		if a.Status != 200 || toolText(a) != "rr" {
			t.Fatalf("stateless through nginx: %d %s", a.Status, a.Body)
		}
		seen[a.Header.Get("X-Erlmcp-Backend")]++
	}
	if len(seen) != 3 {
		t.Fatalf("9 stateless requests through nginx reached %d nodes, want 3 (round-robin): %v", len(seen), seen)
	}

	rehydrated := 0
	for i := 0; i < 12; i++ {
		s, created := newSession(t, url) // initialize, then notifications/initialized hashed
		var at string
		for j := 0; j < 3; j++ {
			a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hashed"}})
			if at != "" && a.Header.Get("X-Erlmcp-Backend") != at {
				t.Fatalf("session %s answered by %s then %s: the hash does not stick", s.id, at, a.Header.Get("X-Erlmcp-Backend"))
			}
			at = a.Header.Get("X-Erlmcp-Backend")
		}
		if at != created {
			rehydrated++
		}
	}
	t.Logf("12 sessions through nginx: %d served by another node than the one that created them", rehydrated)
	if rehydrated == 0 {
		t.Fatalf("no session moved off its creating node: the test did not exercise re-hydration")
	}
}

// list_changed raised on one node reaches the GET streams on every node exactly once: the
// stream on the node that raised it (local delivery, not its own broadcast echoed back) and
// the stream on the other node (through Redis).
func TestClusterListChangedAcrossNodes(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"}, "--profile", "conformance")
	onA, _ := newSession(t, nodes[0].url)
	onB, _ := newSession(t, nodes[1].url)
	stA, stB := onA.openStream(), onB.openStream()
	waitRedisSession(t, r, testPrefix(t), onA.id, "")
	waitRedisSession(t, r, testPrefix(t), onB.id, "")

	onB.mustCall("tools/call", map[string]any{"name": "test_trigger_tool_change"})
	const m = "notifications/tools/list_changed"
	for _, c := range []struct {
		name string
		st   *sseStream
	}{{"a (through Redis)", stA}, {"b (where it was raised)", stB}} {
		if n := c.st.waitCount(m, "", 1, 5*time.Second); n != 1 {
			t.Fatalf("stream on %s: %d %s, want 1:\n%s", c.name, n, m, c.st.all())
		}
	}
	time.Sleep(time.Second)
	if a, b := stA.count(m, ""), stB.count(m, ""); a != 1 || b != 1 {
		t.Fatalf("duplicates: %d on a, %d on b, want 1 each", a, b)
	}
}

// Draining under load: erlmcp bench runs through haproxy against two cluster nodes, stateless
// and session era, while one node is stopped (`erlmcp stop`) mid-run: not one request fails.
// Connections refused by the stopped node are retried on the other (retries + redispatch),
// requests it had read are answered by its drain, and its sessions move to the other node,
// which re-hydrates them from Redis.
func TestClusterStopUnderLoadBehindHAProxy(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"})
	lb := startHAProxy(t, hostports(nodes))
	type result struct {
		Requests uint64            `json:"requests"`
		Errors   uint64            `json:"errors"`
		ByKind   map[string]uint64 `json:"errorsByKind"`
	}
	runs := map[string][]string{
		"stateless": {"--stateless"},
		"session":   {},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]result{}
	for name, extra := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"bench", "--transport", "http", "--url", lb.url, "--mode", "pingpong", "--conns", "8",
				"--duration", "4s", "--warmup", "0s", "--json", "--quiet"}, extra...)
			out, err := exec.Command(binary, args...).Output()
			var res result
			if err != nil || json.Unmarshal(out, &res) != nil {
				t.Errorf("bench %s: %v: %s", name, err, out)
				return
			}
			mu.Lock()
			results[name] = res
			mu.Unlock()
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if out, err := nodes[0].admin("stop"); err != nil {
		t.Fatalf("stop a: %v: %s", err, out)
	}
	wg.Wait()
	for name, res := range results {
		t.Logf("%s: %d requests, %d errors %v", name, res.Requests, res.Errors, res.ByKind)
		if res.Errors != 0 {
			t.Errorf("%s: %d failed requests while a node was stopped behind haproxy: %v", name, res.Errors, res.ByKind)
		}
		if res.Requests < 1000 {
			t.Errorf("%s: only %d requests: the load did not run", name, res.Requests)
		}
	}
	if len(results) != 2 {
		t.Fatalf("bench results: %v", results)
	}
	if v, _ := metricValue(t, nodes[1].metrics, "erlmcp_cluster_rehydrations_total"); v < 1 {
		t.Errorf("no session moved to b (erlmcp_cluster_rehydrations_total %v): did the stop happen mid-run?", v)
	}
}
