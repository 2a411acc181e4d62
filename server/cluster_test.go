package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server/cluster"
	"github.com/erlmcp/erlmcp-go/server/cluster/redistest"
)

// Cluster mode in one process: two or three Servers, each with its own HTTP side on a
// loopback port, sharing one real redis-server on a unix socket.

// testNode is one cluster node of a test.
type testNode struct {
	name string
	srv  *Server
	http *HTTP
	url  string
	c    *cluster.Cluster
}

// startCluster starts one node per name on r (demo registrations, plus register when
// given), and waits until every node is up and sees the others.
func startCluster(t *testing.T, r *redistest.Server, register func(*Server), names ...string) []*testNode {
	t.Helper()
	prefix := fmt.Sprintf("t:%s:%d:", t.Name(), time.Now().UnixNano())
	var nodes []*testNode
	for _, name := range names {
		s := newDemoServer(t, Config{})
		if register != nil {
			register(s)
		}
		c, err := s.EnableCluster(cluster.Config{RedisURL: r.URL(), Node: name, KeyPrefix: prefix,
			SessionTTL: time.Minute, Heartbeat: 50 * time.Millisecond, RedisTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		url, h := startHTTP(t, s, HTTPConfig{SSEKeepAlive: time.Hour})
		c.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			c.Close(ctx)
		})
		nodes = append(nodes, &testNode{name: name, srv: s, http: h, url: url, c: c})
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.name+" up and seeing every node", func() bool { return n.c.Up() && n.c.NodeCount() == len(names) })
	}
	return nodes
}

// on returns a copy of hc that sends to node n (the session id stays).
func (hc *httpClient) on(n *testNode) *httpClient {
	cp := *hc
	cp.url = n.url
	return &cp
}

// rpc posts one request and returns the status and body.
func (hc *httpClient) rpc(body string) (int, string) {
	hc.t.Helper()
	resp := hc.post(body, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// recordOf waits until session id's record in Redis satisfies ok.
func recordOf(t testing.TB, n *testNode, id string, what string, ok func(*cluster.SessionRecord) bool) *cluster.SessionRecord {
	t.Helper()
	var rec *cluster.SessionRecord
	waitFor(t, 3*time.Second, what, func() bool {
		rec, _ = n.c.GetSession(context.Background(), id)
		return rec != nil && ok(rec)
	})
	return rec
}

// ownerOn returns who node n thinks owns session id ("" when it holds no copy).
func ownerOn(n *testNode, id string) string {
	_, cs := n.srv.cluster.localCopy(id)
	if cs == nil {
		return ""
	}
	if o := cs.owner.Load(); o != nil {
		return *o
	}
	return "?"
}

// sseStream is an open GET stream read in the background.
type sseReader struct {
	resp   *http.Response
	mu     sync.Mutex
	events []string
}

func (s *sseReader) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// openGet opens the session's GET stream on hc's node and collects its events.
func openGet(t testing.TB, hc *httpClient) *sseReader {
	t.Helper()
	req, _ := http.NewRequest("GET", hc.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", hc.session)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	c := &http.Client{} // no timeout: the stream stays open until cleanup
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET: status %d %s", resp.StatusCode, b)
	}
	s := &sseReader{resp: resp}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				s.mu.Lock()
				s.events = append(s.events, line[6:])
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// TestClusterRehydration: a session made on A is served by B from its Redis record — same
// id, version, client info — instead of 404; an id unknown to Redis too is still 404.
func TestClusterRehydration(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, r, nil, "a", "b")
	a, b := nodes[0], nodes[1]
	hc := newHTTPClient(t, a.url)
	hc.initialize()
	// Written before initialize was answered (no waiting).
	rec, err := a.c.GetSession(context.Background(), hc.session)
	if err != nil {
		t.Fatalf("the record right after initialize: %v", err)
	}
	if rec.ProtocolVersion != "2025-11-25" || rec.Owner != "a" || !strings.Contains(string(rec.ClientInfo), `"name":"t"`) {
		t.Fatalf("record = %+v", rec)
	}

	st, body := hc.on(b).rpc(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"from b"}}}`)
	if st != 200 || !strings.Contains(body, "from b") {
		t.Fatalf("tools/call on b: %d %s", st, body)
	}
	if b.srv.Rehydrations() != 1 {
		t.Fatalf("b re-hydrated %d sessions, want 1", b.srv.Rehydrations())
	}
	ss := b.srv.Session(hc.session)
	if ss == nil || ss.ProtocolVersion() != "2025-11-25" || ss.ClientInfo() == nil || ss.ClientInfo().Name != "t" {
		t.Fatalf("b's copy: %+v", ss)
	}
	// A second request uses the copy.
	if st, _ := hc.on(b).rpc(`{"jsonrpc":"2.0","id":2,"method":"ping"}`); st != 200 || b.srv.Rehydrations() != 1 {
		t.Fatalf("second request on b: %d, rehydrations %d", st, b.srv.Rehydrations())
	}
	// Owner stays a (no GET stream moved).
	if o := ownerOn(b, hc.session); o != "a" {
		t.Fatalf("b thinks the owner is %q", o)
	}

	// logging/setLevel on b reaches a's copy and the record.
	if st, body := hc.on(b).rpc(`{"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"warning"}}`); st != 200 {
		t.Fatalf("setLevel: %d %s", st, body)
	}
	recordOf(t, a, hc.session, "the level in the record", func(r *cluster.SessionRecord) bool { return r.LogLevel == "warning" })
	waitFor(t, 2*time.Second, "a's copy to learn the level", func() bool {
		s := a.srv.Session(hc.session)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.logLevel == LevelWarning.severity()
	})

	unknown := *hc.on(b)
	unknown.session = NewSessionID()
	if st, body := unknown.rpc(`{"jsonrpc":"2.0","id":1,"method":"ping"}`); st != 404 || !strings.Contains(body, "not found") {
		t.Fatalf("unknown session on b: %d %s", st, body)
	}
}

// TestClusterInitializeWritesBeforeAnswering: the record of a new session is in Redis
// when initialize is answered — checked on a node whose writer goroutine never runs
// (cluster not started), so only the synchronous write can have put it there.
func TestClusterInitializeWritesBeforeAnswering(t *testing.T) {
	r := redistest.Start(t)
	s := newDemoServer(t, Config{})
	c, err := s.EnableCluster(cluster.Config{RedisURL: r.URL(), Node: "x", KeyPrefix: "init:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	url, _ := startHTTP(t, s, HTTPConfig{})
	hc := newHTTPClient(t, url)
	hc.initialize()
	rec, err := c.GetSession(context.Background(), hc.session)
	if err != nil || rec.Owner != "x" || rec.ProtocolVersion != "2025-11-25" {
		t.Fatalf("record after initialize: %+v, %v", rec, err)
	}
	if st := c.Stats(); st.Queued != 0 {
		t.Fatalf("initialize queued %d writes besides the synchronous one", st.Queued)
	}
}

// TestClusterResourceUpdateOnce: a client subscribed (through A) with its GET stream on B
// hears a write_note made on C exactly once, though A, B and C all hold a copy of its
// session; a message A raises for the session travels to B's stream.
func TestClusterResourceUpdateOnce(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, r, nil, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	hc := newHTTPClient(t, a.url)
	hc.initialize()
	if st, body := hc.rpc(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"` + DemoNoteURI + `"}}`); st != 200 {
		t.Fatalf("subscribe: %d %s", st, body)
	}
	recordOf(t, a, hc.session, "the subscription in the record", func(r *cluster.SessionRecord) bool { return len(r.Subscriptions) == 1 })
	// Copies on c and b; the GET stream on b makes b the owner.
	if st, _ := hc.on(c).rpc(`{"jsonrpc":"2.0","id":2,"method":"ping"}`); st != 200 {
		t.Fatalf("ping on c: %d", st)
	}
	stream := openGet(t, hc.on(b))
	for _, n := range nodes {
		waitFor(t, 3*time.Second, n.name+" to see b as the owner", func() bool { return ownerOn(n, hc.session) == "b" })
	}
	recordOf(t, a, hc.session, "the owner in the record", func(r *cluster.SessionRecord) bool { return r.Owner == "b" })

	writer := newHTTPClient(t, c.url)
	writer.initialize()
	if st, body := writer.rpc(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note","arguments":{"text":"x"}}}`); st != 200 || !strings.Contains(body, "note written") {
		t.Fatalf("write_note on c: %d %s", st, body)
	}
	waitFor(t, 3*time.Second, "resources/updated on b's stream", func() bool { return len(stream.snapshot()) >= 1 })
	time.Sleep(300 * time.Millisecond) // duplicates, if any, arrive meanwhile
	ev := stream.snapshot()
	if len(ev) != 1 || !strings.Contains(ev[0], NotificationResourceUpdated) || !strings.Contains(ev[0], DemoNoteURI) {
		t.Fatalf("stream events = %q, want one resources/updated", ev)
	}
	// The subscriber reads the new text through its own node.
	if st, body := hc.on(b).rpc(`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"` + DemoNoteURI + `"}}`); st != 200 || !strings.Contains(body, `"text":"x"`) {
		t.Fatalf("the note read on b: %d %s", st, body)
	}

	// A message raised for the session on a (not the owner) goes to b's stream.
	if err := a.srv.Session(hc.session).Notify("notifications/message", map[string]any{"level": "info", "data": "from a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a's message on b's stream", func() bool { return len(stream.snapshot()) == 2 })
	if ev := stream.snapshot(); !strings.Contains(ev[1], "from a") {
		t.Fatalf("second event = %q", ev[1])
	}
	// A tools/list_changed raised on a reaches the session once, on b.
	a.srv.AddTool(&Tool{Name: "late"}, ToolOptions{}, func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
		return nil, nil
	})
	waitFor(t, 3*time.Second, "list_changed on b's stream", func() bool { return len(stream.snapshot()) >= 3 })
	time.Sleep(300 * time.Millisecond)
	if ev := stream.snapshot(); len(ev) != 3 || !strings.Contains(ev[2], NotificationToolListChanged) {
		t.Fatalf("events = %q, want list_changed once", ev)
	}
	if got := a.c.Stats().Published; got == 0 {
		t.Fatal("a published nothing")
	}
}

// TestClusterDeleteEndsCopies: DELETE through C ends the session everywhere: the copies
// on A and B are dropped and the record is gone, so A answers 404.
func TestClusterDeleteEndsCopies(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, r, nil, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	hc := newHTTPClient(t, a.url)
	hc.initialize()
	recordOf(t, a, hc.session, "the record", func(*cluster.SessionRecord) bool { return true })
	for _, n := range []*testNode{b, c} {
		if st, _ := hc.on(n).rpc(`{"jsonrpc":"2.0","id":1,"method":"ping"}`); st != 200 {
			t.Fatalf("ping on %s: %d", n.name, st)
		}
	}
	stream := openGet(t, hc.on(b))
	req, _ := http.NewRequest("DELETE", c.url, nil)
	req.Header.Set("Mcp-Session-Id", hc.session)
	resp, err := hc.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE on c: %d", resp.StatusCode)
	}
	for _, n := range nodes {
		waitFor(t, 3*time.Second, "the copy on "+n.name+" to end", func() bool { return n.srv.Session(hc.session) == nil })
	}
	waitFor(t, 3*time.Second, "the record to go", func() bool {
		_, err := a.c.GetSession(context.Background(), hc.session)
		return err == cluster.ErrNotFound
	})
	if st, _ := hc.rpc(`{"jsonrpc":"2.0","id":2,"method":"ping"}`); st != 404 {
		t.Fatalf("ping on a after DELETE: %d, want 404", st)
	}
	// b's GET stream ended with the session.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, stream.resp.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("b's GET stream is still open after DELETE")
	}
}

// TestClusterTasksAcrossNodes: a task created on A is read on B, answered (input-required)
// through C, completes on A and is read complete on B; a task cancelled through B stops
// on A.
func TestClusterTasksAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	register := func(s *Server) {
		if err := s.AddTaskTool(TaskTool{Tool: &Tool{Name: "confirm"}, Required: true,
			Run: func(ctx context.Context, tk *Task, _ json.RawMessage) (*CallToolResult, error) {
				got, err := tk.Input(ctx, map[string]InputRequest{"ok": elicitInput("Sure?", `{"type":"object"}`)})
				if err != nil {
					return nil, err
				}
				var er ElicitResult
				_ = json.Unmarshal(got["ok"], &er)
				return textResult("answered " + er.Action), nil
			}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddTaskTool(TaskTool{Tool: &Tool{Name: "forever"}, Required: true,
			Run: func(ctx context.Context, tk *Task, _ json.RawMessage) (*CallToolResult, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}}); err != nil {
			t.Fatal(err)
		}
	}
	nodes := startCluster(t, r, register, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}`
	call := func(n *testNode, method, name, params string) map[string]any {
		t.Helper()
		hc := newHTTPClient(t, n.url)
		resp := hc.post(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":{`+params+meta+`}}`,
			map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method, "Mcp-Name": name})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m struct {
			Result map[string]any `json:"result"`
			Error  any            `json:"error"`
		}
		if json.Unmarshal(body, &m) != nil || m.Result == nil {
			t.Fatalf("%s on %s: %d %s", method, n.name, resp.StatusCode, body)
		}
		return m.Result
	}
	created := call(a, "tools/call", "confirm", `"name":"confirm",`)
	id, _ := created["taskId"].(string)
	if created["resultType"] != "task" || id == "" {
		t.Fatalf("tools/call: %v", created)
	}
	// Read at once on b: the record was written before the id was handed out.
	got := call(b, "tasks/get", id, `"taskId":"`+id+`",`)
	if got["status"] != TaskWorking && got["status"] != TaskInputRequired {
		t.Fatalf("tasks/get on b: %v", got)
	}
	waitFor(t, 3*time.Second, "input_required seen on b", func() bool {
		got = call(b, "tasks/get", id, `"taskId":"`+id+`",`)
		return got["status"] == TaskInputRequired
	})
	if reqs, _ := got["inputRequests"].(map[string]any); reqs["ok"] == nil {
		t.Fatalf("inputRequests on b: %v", got)
	}
	if ack := call(c, "tasks/update", id, `"taskId":"`+id+`","inputResponses":{"ok":{"action":"accept","content":{}}},`); ack["resultType"] != "complete" {
		t.Fatalf("tasks/update on c: %v", ack)
	}
	waitFor(t, 3*time.Second, "completed seen on b", func() bool {
		got = call(b, "tasks/get", id, `"taskId":"`+id+`",`)
		return got["status"] == TaskCompleted
	})
	if res, _ := json.Marshal(got["result"]); !strings.Contains(string(res), "answered accept") {
		t.Fatalf("result on b: %s", res)
	}

	forever := call(a, "tools/call", "forever", `"name":"forever",`)
	fid, _ := forever["taskId"].(string)
	if ack := call(b, "tasks/cancel", fid, `"taskId":"`+fid+`",`); ack["resultType"] != "complete" {
		t.Fatalf("tasks/cancel on b: %v", ack)
	}
	waitFor(t, 3*time.Second, "the task cancelled on a", func() bool {
		tk := a.srv.tasks().get(fid)
		tk.mu.Lock()
		defer tk.mu.Unlock()
		return tk.status == TaskCancelled
	})
	waitFor(t, 3*time.Second, "cancelled seen on c", func() bool {
		return call(c, "tasks/get", fid, `"taskId":"`+fid+`",`)["status"] == TaskCancelled
	})
}

// TestClusterRequestStateSealedWithSharedKey: an input-required result made on A carries
// a requestState sealed with the key the nodes agreed on (not A's own process key), and
// B completes the retry.
func TestClusterRequestStateSealedWithSharedKey(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, r, addAskTool, "a", "b")
	a, b := nodes[0], nodes[1]
	waitFor(t, 2*time.Second, "an agreed key", func() bool { return a.c.StateKey() != nil && string(a.c.StateKey()) == string(b.c.StateKey()) })
	sealed := askFirst(t, a.url)
	i := strings.LastIndexByte(sealed, '.')
	state, _ := base64.RawURLEncoding.DecodeString(sealed[:i])
	tag, _ := base64.RawURLEncoding.DecodeString(sealed[i+1:])
	if !stateTagOK(a.c.StateKey(), state, tag) || stateTagOK(a.srv.stateKey, state, tag) {
		t.Fatal("the requestState is not sealed with the cluster's key")
	}
	if status, body := askRetry(t, b.url, sealed); status != 200 || !strings.Contains(body, "hello Ada") {
		t.Fatalf("round 2 on b: %d %s", status, body)
	}
}

// TestClusterDisabledCostsNothing: with cluster mode off no session carries cluster state.
func TestClusterDisabledCostsNothing(t *testing.T) {
	s := newDemoServer(t, Config{})
	url, _ := startHTTP(t, s, HTTPConfig{})
	hc := newHTTPClient(t, url)
	hc.initialize()
	ss := s.Session(hc.session)
	if _, ok := ss.out.(*clusterSession); ok || s.Cluster() != nil || s.Rehydrations() != 0 {
		t.Fatal("cluster state without cluster mode")
	}
}

// TestClusterResyncAfterRedisRestart: Redis restarts empty (no persistence); the node
// holding a session writes its record again as soon as Redis is back, so a failover to
// another node re-hydrates it at once instead of answering 404 until the next TTL refresh.
func TestClusterResyncAfterRedisRestart(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, r, nil, "a", "b")
	a, b := nodes[0], nodes[1]
	hc := newHTTPClient(t, a.url)
	hc.initialize()
	if st, body := hc.rpc(`{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"error"}}`); st != 200 {
		t.Fatalf("setLevel on a: %d %s", st, body)
	}
	recordOf(t, a, hc.session, "the record with its level", func(rec *cluster.SessionRecord) bool { return rec.LogLevel == "error" })

	r.Kill()
	waitFor(t, 5*time.Second, "a to see Redis down", func() bool { return !a.c.Up() })
	r.Restart() // empty: --save ''
	if _, err := a.c.GetSession(context.Background(), hc.session); err == nil {
		t.Fatal("the restarted Redis still holds the record; the test needs an empty one")
	}
	// Within a few heartbeats (50 ms here), far below the TTL refresh (15 s here).
	rec := recordOf(t, a, hc.session, "the record re-written after the restart", func(*cluster.SessionRecord) bool { return true })
	if rec.ProtocolVersion != "2025-11-25" || rec.LogLevel != "error" || rec.Owner != "a" {
		t.Fatalf("re-written record: %+v", rec)
	}
	st, body := hc.on(b).rpc(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"after restart"}}}`)
	if st != 200 || !strings.Contains(body, "after restart") {
		t.Fatalf("failover to b after the restart: %d %s", st, body)
	}
}
