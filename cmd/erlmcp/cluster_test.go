package main

// Cluster mode end to end (issue 8): real erlmcp binaries in cluster mode, a real
// redis-server on a unix socket, and a real haproxy running deploy/haproxy/haproxy.cfg in
// front: sessions across nodes and node failure, notifications across nodes. Redis outage:
// cluster_redis_test.go; load balancers, draining and upgrade: cluster_lb_test.go; the
// official conformance suite through haproxy: .ci/conformance-cluster.sh.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server/cluster/redistest"
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
func waitRedisSession(t *testing.T, r *redistest.Server, prefix, id, uri string) {
	t.Helper()
	key := prefix + "session:" + id
	deadline := time.Now().Add(5 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		n, err := r.Command("EXISTS", key)
		last = n
		if err == nil && n == "1" {
			if uri == "" {
				return
			}
			script := "for _,f in ipairs(redis.call('HKEYS',KEYS[1])) do if string.find(f, ARGV[1], 1, true) then return 1 end end return 0"
			if ok, _ := r.Command("EVAL", script, "1", key, uri); ok == "1" {
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
func waitRedisField(t *testing.T, r *redistest.Server, key, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	script := "for _,v in ipairs(redis.call('HVALS',KEYS[1])) do if v == ARGV[1] then return 1 end end return 0"
	for time.Now().Before(deadline) {
		if ok, err := r.Command("EVAL", script, "1", key, want); err == nil && ok == "1" {
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
