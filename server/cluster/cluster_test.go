package cluster

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server/cluster/redistest"
)

// sessions is an in-memory Config.Sessions for tests.
type sessions struct {
	mu sync.Mutex
	m  map[string]*SessionRecord
}

func (s *sessions) put(r *SessionRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*SessionRecord{}
	}
	cp := *r
	s.m[r.ID] = &cp
}

func (s *sessions) get(id string) (*SessionRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	if !ok {
		return nil, false
	}
	cp := *r
	return &cp, true
}

// inbox collects the bus messages a node receives.
type inbox struct {
	mu   sync.Mutex
	msgs []*Message
}

func (in *inbox) add(m *Message) { in.mu.Lock(); in.msgs = append(in.msgs, m); in.mu.Unlock() }

func (in *inbox) snapshot() []*Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*Message(nil), in.msgs...)
}

// waitFor polls cond every 5ms for up to d, failing with what otherwise.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newNode builds a cluster node on r with a prefix unique to the test; it is closed at
// cleanup. start=false leaves the writer stopped (queue tests).
func newNode(t testing.TB, r *redistest.Server, name string, start bool, tweak func(*Config)) *Cluster {
	t.Helper()
	cfg := Config{
		RedisURL:     r.URL(),
		Node:         name,
		KeyPrefix:    "t:" + t.Name() + ":",
		SessionTTL:   time.Minute,
		Heartbeat:    50 * time.Millisecond,
		RedisTimeout: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if start {
		c.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{RedisURL: "redis://127.0.0.1:1/0"}, "node name is empty"},
		{Config{Node: "a"}, "redis_url is empty"},
		{Config{Node: "a", RedisURL: "http://x"}, "invalid URL scheme"},
		{Config{Node: "a", RedisURL: "redis://h:1/notanumber"}, "invalid database number"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSessionRecordFieldsRoundTrip(t *testing.T) {
	for _, rec := range []SessionRecord{
		{ID: "s1", ProtocolVersion: "2025-11-25", Created: time.UnixMilli(1700000000123)},
		{ID: "s2", ProtocolVersion: "2025-06-18", ClientInfo: json.RawMessage(`{"name":"c","version":"1"}`),
			ClientCapabilities: json.RawMessage(`{"roots":{"listChanged":true}}`), LogLevel: "debug",
			Subscriptions: []string{"a://1", "b://x:y"}, Owner: "node-b", Created: time.UnixMilli(1)},
	} {
		got, err := DecodeSessionRecord(rec.ID, rec.Fields())
		if err != nil {
			t.Fatalf("%s: %v", rec.ID, err)
		}
		if !reflect.DeepEqual(*got, rec) {
			t.Errorf("round trip:\n got %+v\nwant %+v", *got, rec)
		}
	}
	if _, err := DecodeSessionRecord("x", map[string]string{"lvl": "info"}); err != ErrNotFound {
		t.Errorf("a hash without a version decoded: %v", err)
	}
	if _, err := DecodeSessionRecord("x", map[string]string{"v": "2025-11-25", "ci": "{nope"}); err == nil || !strings.Contains(err.Error(), "ci") {
		t.Errorf("bad client info: %v", err)
	}
}

// TestSessionRecordInRedis: a saved record reads back equal, with the TTL set and then
// refreshed by TouchSession; patches change single fields; DeleteSession removes it.
func TestSessionRecordInRedis(t *testing.T) {
	r := redistest.Start(t)
	var src sessions
	c := newNode(t, r, "a", true, func(cfg *Config) { cfg.Sessions = src.get; cfg.SessionTTL = 3 * time.Second })
	ctx := context.Background()
	rec := SessionRecord{ID: "sess-1", ProtocolVersion: "2025-11-25", ClientInfo: json.RawMessage(`{"name":"t","version":"1"}`),
		ClientCapabilities: json.RawMessage(`{}`), Owner: "a", Created: time.UnixMilli(time.Now().UnixMilli())}
	src.put(&rec)
	if _, err := c.GetSession(ctx, rec.ID); err != ErrNotFound {
		t.Fatalf("before save: %v, want ErrNotFound", err)
	}
	c.SaveSession(rec.ID)
	var got *SessionRecord
	waitFor(t, 2*time.Second, "the record", func() bool { got, _ = c.GetSession(ctx, rec.ID); return got != nil })
	if !reflect.DeepEqual(*got, rec) {
		t.Fatalf("read back:\n got %+v\nwant %+v", *got, rec)
	}
	key := "PTTL " + c.keys.session(rec.ID)
	pttl := func() int {
		s, err := r.Do(key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	if ms := pttl(); ms <= 0 || ms > 3000 {
		t.Fatalf("TTL = %dms, want (0, 3000]", ms)
	}
	time.Sleep(1200 * time.Millisecond)
	if ms := pttl(); ms > 1900 {
		t.Fatalf("TTL = %dms after 1.2s, want it counting down", ms)
	}
	c.TouchSession(rec.ID)
	waitFor(t, 2*time.Second, "the TTL refresh", func() bool { return pttl() > 2500 })

	c.SetLogLevel(rec.ID, "warning")
	c.Subscribe(rec.ID, "erlmcp://demo/note", true)
	c.Subscribe(rec.ID, "erlmcp://other", true)
	c.Subscribe(rec.ID, "erlmcp://other", false)
	c.SetOwner(rec.ID, "b")
	waitFor(t, 2*time.Second, "the patches", func() bool {
		got, _ = c.GetSession(ctx, rec.ID)
		return got != nil && got.Owner == "b"
	})
	want := rec
	want.LogLevel, want.Owner, want.Subscriptions = "warning", "b", []string{"erlmcp://demo/note"}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("after patches:\n got %+v\nwant %+v", *got, want)
	}

	// The record expires without activity.
	time.Sleep(3100 * time.Millisecond)
	if _, err := c.GetSession(ctx, rec.ID); err != ErrNotFound {
		t.Fatalf("after the TTL: %v, want ErrNotFound", err)
	}
	// A touch of an expired session this node holds writes it whole again.
	c.TouchSession(rec.ID)
	waitFor(t, 2*time.Second, "the rewrite", func() bool { got, _ = c.GetSession(ctx, rec.ID); return got != nil })

	c.DeleteSession(rec.ID)
	waitFor(t, 2*time.Second, "the delete", func() bool { _, err := c.GetSession(ctx, rec.ID); return err == ErrNotFound })
}

// TestPatchNeverCreatesARecord: a change for a session no record exists for, and that
// this node does not hold, leaves Redis empty (no half record without a version).
func TestPatchNeverCreatesARecord(t *testing.T) {
	r := redistest.Start(t)
	c := newNode(t, r, "a", true, nil)
	c.SetLogLevel("ghost", "info")
	c.Subscribe("ghost", "x://y", true)
	c.SaveSession("also-unknown")
	waitFor(t, 2*time.Second, "the writer", func() bool { return c.Stats().Queued == 0 && c.Stats().Published > 0 })
	if n, err := r.Do("EXISTS " + c.keys.session("ghost")); err != nil || n != "0" {
		t.Fatalf("EXISTS ghost = %q, %v; want 0", n, err)
	}
}

func TestQueueCoalescesPerSession(t *testing.T) {
	q := newQueue(3)
	push := func(e entry) bool { return q.push(&e) }
	for i := range 1000 {
		push(entry{kind: entrySession, key: "s:a", id: "a", level: strconv.Itoa(i), hasLevel: true})
		push(entry{kind: entrySession, key: "s:a", id: "a", subs: map[string]bool{"u" + strconv.Itoa(i%3): i%2 == 0}})
	}
	push(entry{kind: entrySession, key: "s:a", id: "a", owner: "n2", hasOwner: true})
	if q.len() != 1 {
		t.Fatalf("queue holds %d entries for one session, want 1", q.len())
	}
	push(entry{kind: entryTask, key: "t:1", id: "1"})
	push(entry{kind: entryPublish, channel: "c", payload: []byte("x")})
	if push(entry{kind: entryPublish, channel: "c", payload: []byte("y")}) || q.dropped.Load() != 1 {
		t.Fatalf("a push past QueueSize was not refused and counted (dropped %d)", q.dropped.Load())
	}
	batch := q.take(10)
	if len(batch) != 3 || batch[0].id != "a" || batch[1].id != "1" || batch[2].kind != entryPublish {
		t.Fatalf("take = %+v", batch)
	}
	e := batch[0]
	if e.level != "999" || e.owner != "n2" || !reflect.DeepEqual(e.subs, map[string]bool{"u0": false, "u1": false, "u2": true}) {
		t.Fatalf("merged entry = %+v", *e)
	}
	// A failed batch goes back in front, merged with what came since; publishes are lost.
	push(entry{kind: entrySession, key: "s:a", id: "a", level: "info", hasLevel: true})
	q.requeue(batch)
	again := q.take(10)
	if len(again) != 2 || again[0].id != "a" || again[0].level != "info" || again[0].owner != "n2" || again[1].id != "1" {
		t.Fatalf("after requeue: %d entries %+v", len(again), again)
	}
	// DELETE wins over everything queued for the session.
	push(entry{kind: entrySession, key: "s:b", id: "b", level: "info", hasLevel: true})
	push(entry{kind: entrySession, key: "s:b", id: "b", del: true})
	push(entry{kind: entrySession, key: "s:b", id: "b", level: "debug", hasLevel: true})
	if b := q.take(1); !b[0].del || b[0].hasLevel {
		t.Fatalf("delete entry = %+v", *b[0])
	}
}

// TestWriterCoalescesAgainstRedis: 2000 changes to one session queued while the writer is
// stopped are one queue entry, and land as their net effect.
func TestWriterCoalescesAgainstRedis(t *testing.T) {
	r := redistest.Start(t)
	var src sessions
	c := newNode(t, r, "a", false, func(cfg *Config) { cfg.Sessions = src.get })
	rec := SessionRecord{ID: "s", ProtocolVersion: "2025-11-25", Owner: "a", Created: time.UnixMilli(5)}
	src.put(&rec)
	c.SaveSession("s")
	for i := range 1000 {
		c.SetLogLevel("s", []string{"debug", "info", "error"}[i%3])
		c.Subscribe("s", "u://"+strconv.Itoa(i%10), i%4 != 0)
	}
	if st := c.Stats(); st.Queued != 1 {
		t.Fatalf("queued %d entries, want 1", st.Queued)
	}
	c.Start()
	var got *SessionRecord
	waitFor(t, 2*time.Second, "the record", func() bool { got, _ = c.GetSession(context.Background(), "s"); return got != nil })
	// i = 999: level "debug"; subscriptions: the last i for each uri decides (i%4 != 0).
	want := []string{}
	for u := range 10 {
		last := 990 + u
		if last%4 != 0 {
			want = append(want, "u://"+strconv.Itoa(u))
		}
	}
	if got.LogLevel != "debug" || !reflect.DeepEqual(got.Subscriptions, want) {
		t.Fatalf("record = %+v, want level debug and subs %v", got, want)
	}
}

func TestQueueBound(t *testing.T) {
	r := redistest.Start(t)
	c := newNode(t, r, "a", false, func(cfg *Config) { cfg.QueueSize = 4 })
	for i := range 10 {
		c.TouchSession("s" + strconv.Itoa(i))
	}
	if st := c.Stats(); st.Queued != 4 || st.Dropped != 6 {
		t.Fatalf("stats = %+v, want 4 queued and 6 dropped", st)
	}
}

// TestBusDelivery: a broadcast reaches every other node once and not its sender; a message
// to one node's channel reaches only that node.
func TestBusDelivery(t *testing.T) {
	r := redistest.Start(t)
	var ia, ib, ic inbox
	a := newNode(t, r, "a", true, func(cfg *Config) { cfg.OnMessage = ia.add })
	b := newNode(t, r, "b", true, func(cfg *Config) { cfg.OnMessage = ib.add })
	cc := newNode(t, r, "c", true, func(cfg *Config) { cfg.OnMessage = ic.add })
	for _, n := range []*Cluster{a, b, cc} {
		waitFor(t, 3*time.Second, n.Node()+" up", n.Up)
	}
	a.Broadcast(Message{Kind: KindResourceUpdated, URI: "erlmcp://demo/note"})
	a.SendTo("c", Message{Kind: KindDeliver, Session: "s1", Data: json.RawMessage(`{"jsonrpc":"2.0","method":"x"}`)})
	waitFor(t, 2*time.Second, "delivery", func() bool { return len(ib.snapshot()) == 1 && len(ic.snapshot()) == 2 })
	time.Sleep(100 * time.Millisecond) // nothing more comes
	if n := len(ia.snapshot()); n != 0 {
		t.Fatalf("the sender received %d of its own messages", n)
	}
	if got := ib.snapshot(); len(got) != 1 || got[0].Kind != KindResourceUpdated || got[0].URI != "erlmcp://demo/note" || got[0].From != "a" {
		t.Fatalf("b got %+v", got)
	}
	got := ic.snapshot()
	var deliver *Message
	for _, m := range got {
		if m.Kind == KindDeliver {
			deliver = m
		}
	}
	if deliver == nil || deliver.Session != "s1" || string(deliver.Data) != `{"jsonrpc":"2.0","method":"x"}` {
		t.Fatalf("c got %+v", got)
	}
	if st := a.Stats(); st.Published != 2 {
		t.Fatalf("a published %d, want 2", st.Published)
	}
	if st := cc.Stats(); st.Received != 2 {
		t.Fatalf("c received %d, want 2", st.Received)
	}
}

// TestReconnectAfterRedisRestart: redis-server killed and restarted on the same socket.
// Both nodes turn down with a reason, recover by themselves, the bus is subscribed again
// and a session saved during the outage reaches Redis afterwards.
func TestReconnectAfterRedisRestart(t *testing.T) {
	r := redistest.Start(t)
	var src sessions
	var ib inbox
	a := newNode(t, r, "a", true, func(cfg *Config) { cfg.Sessions = src.get })
	b := newNode(t, r, "b", true, func(cfg *Config) { cfg.OnMessage = ib.add })
	waitFor(t, 3*time.Second, "both up", func() bool { return a.Up() && b.Up() })

	r.Kill()
	waitFor(t, 3*time.Second, "both down", func() bool { return !a.Up() && !b.Up() })
	if msg, at := a.LastError(); msg == "" || at.IsZero() || a.DownReason() == "" {
		t.Fatalf("down without a reason: %q %v %q", msg, at, a.DownReason())
	}
	start := time.Now()
	if _, err := a.GetSession(context.Background(), "x"); err == nil || err == ErrNotFound {
		t.Fatalf("GetSession while Redis is down: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("GetSession while Redis is down took %s; RedisTimeout is 200ms", d)
	}
	rec := SessionRecord{ID: "during", ProtocolVersion: "2025-11-25", Owner: "a", Created: time.UnixMilli(1)}
	src.put(&rec)
	a.SaveSession(rec.ID)

	r.Restart()
	waitFor(t, 5*time.Second, "both up again", func() bool { return a.Up() && b.Up() })
	waitFor(t, 3*time.Second, "the record saved during the outage", func() bool {
		got, _ := a.GetSession(context.Background(), rec.ID)
		return got != nil
	})
	a.Broadcast(Message{Kind: KindListChanged, Method: "notifications/tools/list_changed"})
	waitFor(t, 3*time.Second, "a broadcast after re-subscription", func() bool {
		for _, m := range ib.snapshot() {
			if m.Kind == KindListChanged {
				return true
			}
		}
		return false
	})
	if b.Stats().Errors == 0 {
		t.Fatal("the outage counted no errors")
	}
}

// TestNodeRegistry: nodes see each other with their session counts; a node that stops
// cleanly is gone at once, one that dies is forgotten within 5 heartbeats.
func TestNodeRegistry(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r, "a", true, func(cfg *Config) { cfg.LocalSessions = func() int { return 3 }; cfg.Addr = "10.0.0.1:8080" })
	b := newNode(t, r, "b", true, nil)
	c := newNode(t, r, "c", true, nil)
	waitFor(t, 3*time.Second, "three nodes", func() bool { return b.NodeCount() == 3 })
	nodes := b.Nodes()
	if nodes[0].Name != "a" || nodes[0].Sessions != 3 || nodes[0].Addr != "10.0.0.1:8080" || nodes[0].Started == 0 || !b.NodeAlive("c") {
		t.Fatalf("nodes = %+v", nodes)
	}

	ctx := context.Background()
	c.Close(ctx) // clean stop: deregistered
	waitFor(t, time.Second, "c gone", func() bool { return b.NodeCount() == 2 && !b.NodeAlive("c") })

	a.end(ctx, false) // a crash: no deregistration, the record expires
	died := time.Now()
	waitFor(t, 3*time.Second, "a expired", func() bool { return !b.NodeAlive("a") })
	if d := time.Since(died); d < 150*time.Millisecond {
		t.Fatalf("a dead node left the registry after %s, before its record's TTL", d)
	}
	if n := b.NodeCount(); n != 1 {
		t.Fatalf("nodes = %+v", b.Nodes())
	}

	// erlmcp upgrade: a new process with the same name starts, then the old one stops.
	// The old one must not remove the new one's record.
	// Each writes its record once, at Start (hour-long heartbeats).
	slow := func(cfg *Config) { cfg.Heartbeat = time.Hour }
	old := newNode(t, r, "u", true, slow)
	nw := newNode(t, r, "u", true, slow)
	old.Close(ctx)
	if n, err := r.Do("EXISTS " + b.keys.node("u")); err != nil || n != "1" {
		t.Fatalf("the old process of an upgrade removed the new one's record: EXISTS = %q %v", n, err)
	}
	if s, err := r.Do("ZSCORE " + b.keys.nodes() + " u"); err != nil || s == "" {
		t.Fatalf("the old process of an upgrade removed the new one from the zset: %q %v", s, err)
	}
	nw.Close(ctx)
	if n, _ := r.Do("EXISTS " + b.keys.node("u")); n != "0" {
		t.Fatal("the new process's own stop left its record")
	}
}

// TestStateKeyAgreement: nodes without a configured key agree on one random key; a
// configured key is used as is.
func TestStateKeyAgreement(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r, "a", true, nil)
	b := newNode(t, r, "b", true, nil)
	waitFor(t, 2*time.Second, "keys", func() bool { return a.StateKey() != nil && b.StateKey() != nil })
	if string(a.StateKey()) != string(b.StateKey()) || len(a.StateKey()) != 32 {
		t.Fatalf("keys differ: %x vs %x", a.StateKey(), b.StateKey())
	}
	fixed := newNode(t, r, "f", true, func(cfg *Config) { cfg.StateKey = []byte("shared secret") })
	if string(fixed.StateKey()) != "shared secret" {
		t.Fatalf("configured key = %q", fixed.StateKey())
	}
	// Redis restarted without persistence: the nodes keep their key and put it back.
	old := string(a.StateKey())
	r.Kill()
	r.Restart()
	waitFor(t, 5*time.Second, "up again", func() bool { return a.Up() && b.Up() })
	time.Sleep(200 * time.Millisecond)
	if string(a.StateKey()) != old || string(b.StateKey()) != old {
		t.Fatal("the agreed key changed after a Redis restart")
	}
}

// TestSharedValues: a value one node sets is what another reads.
func TestSharedValues(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r, "a", true, nil)
	b := newNode(t, r, "b", true, nil)
	ctx := context.Background()
	if _, err := b.Value(ctx, "note"); err != ErrNotFound {
		t.Fatalf("Value before SetValue: %v", err)
	}
	if err := a.SetValue(ctx, "note", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Value(ctx, "note"); err != nil || string(v) != "hello" {
		t.Fatalf("Value = %q, %v", v, err)
	}
}

// TestTaskRecords: SaveTaskNow and the queued SaveTask write what GetTask reads, with the
// record's TTL.
func TestTaskRecords(t *testing.T) {
	r := redistest.Start(t)
	var mu sync.Mutex
	detail := `{"taskId":"t1","status":"working"}`
	c := newNode(t, r, "a", true, func(cfg *Config) {
		cfg.Tasks = func(id string) (*TaskRecord, bool) {
			mu.Lock()
			defer mu.Unlock()
			return &TaskRecord{ID: id, Node: "a", Detail: json.RawMessage(detail), TTL: time.Minute}, id == "t1"
		}
	})
	ctx := context.Background()
	if _, err := c.GetTask(ctx, "t1"); err != ErrNotFound {
		t.Fatalf("GetTask before save: %v", err)
	}
	if err := c.SaveTaskNow(ctx, &TaskRecord{ID: "t1", Node: "a", Detail: json.RawMessage(detail), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetTask(ctx, "t1")
	if err != nil || got.Node != "a" || string(got.Detail) != detail {
		t.Fatalf("GetTask = %+v, %v", got, err)
	}
	mu.Lock()
	detail = `{"taskId":"t1","status":"completed"}`
	mu.Unlock()
	c.SaveTask("t1")
	waitFor(t, 2*time.Second, "the update", func() bool {
		got, _ = c.GetTask(ctx, "t1")
		return got != nil && strings.Contains(string(got.Detail), "completed")
	})
	if ms, _ := r.Do("PTTL " + c.keys.task("t1")); ms == "-1" || ms == "-2" {
		t.Fatalf("task PTTL = %s", ms)
	}
}
