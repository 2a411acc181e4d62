package cluster

import (
	"sync"
	"sync/atomic"
)

// entryKind is what a queue entry writes.
type entryKind uint8

const (
	entrySession entryKind = iota + 1 // a session's pending changes
	entryTask                         // a task record to save
	entryPublish                      // one message to publish
)

// entry is one unit of the writer's queue. Entries of one session (or task) coalesce:
// while one is queued, later changes merge into it, so a session costs at most one entry
// however busy it is. Publishes never coalesce.
type entry struct {
	kind entryKind
	key  string // coalescing key ("s:<id>", "t:<id>"); "" for publishes
	id   string

	// Session changes. None set means a refresh of the TTL (activity).
	del      bool            // DELETE: remove the record, tell the nodes
	full     bool            // write every field from Config.Sessions
	level    string          // logging/setLevel
	hasLevel bool            //
	owner    string          // a GET stream moved here
	hasOwner bool            //
	subs     map[string]bool // uri → subscribed (true) or unsubscribed (false)

	// Publish.
	channel string
	payload []byte
}

// patches reports whether the entry changes fields other nodes' copies must learn.
func (e *entry) patches() bool { return e.hasLevel || e.hasOwner || len(e.subs) > 0 }

// merge folds n, which happened after e, into e.
func (e *entry) merge(n *entry) {
	if e.del {
		return // ids are random: nothing follows the end of a session
	}
	if n.del {
		*e = entry{kind: e.kind, key: e.key, id: e.id, del: true}
		return
	}
	e.full = e.full || n.full
	if n.hasLevel {
		e.level, e.hasLevel = n.level, true
	}
	if n.hasOwner {
		e.owner, e.hasOwner = n.owner, true
	}
	for uri, on := range n.subs {
		if e.subs == nil {
			e.subs = make(map[string]bool, len(n.subs))
		}
		e.subs[uri] = on
	}
}

// queue is the writer's bounded FIFO. Safe for concurrent use.
type queue struct {
	mu    sync.Mutex
	items []*entry
	byKey map[string]*entry
	max   int
	wake  chan struct{} // cap 1: something was queued

	dropped atomic.Uint64
}

func newQueue(max int) *queue {
	return &queue{byKey: make(map[string]*entry), max: max, wake: make(chan struct{}, 1)}
}

// push queues e, or merges it into the queued entry of the same key. It reports false
// when the queue is full and e was dropped.
func (q *queue) push(e *entry) bool {
	q.mu.Lock()
	if e.key != "" {
		if old := q.byKey[e.key]; old != nil {
			old.merge(e)
			q.mu.Unlock()
			return true
		}
	}
	if len(q.items) >= q.max {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	q.items = append(q.items, e)
	if e.key != "" {
		q.byKey[e.key] = e
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns up to n entries, oldest first.
func (q *queue) take(n int) []*entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.items))
	if n == 0 {
		return nil
	}
	out := make([]*entry, n)
	copy(out, q.items)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	for _, e := range out {
		if e.key != "" {
			delete(q.byKey, e.key)
		}
	}
	return out
}

// requeue puts back the keyed entries of a batch that failed, ahead of the rest, merging
// with changes queued since. Publishes are not retried: a notification delivered after
// an outage would be stale, and the counters say they were lost.
func (q *queue) requeue(batch []*entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var front []*entry
	merged := false
	for _, e := range batch {
		if e.key == "" {
			q.dropped.Add(1)
			continue
		}
		if cur := q.byKey[e.key]; cur != nil {
			e.merge(cur) // the queued entry is newer: it goes on top, in e's older place
			cur.key = "" // marks it for removal below
			merged = true
		}
		front = append(front, e)
	}
	if merged {
		kept := q.items[:0]
		for _, e := range q.items {
			if e.key != "" || e.kind == entryPublish {
				kept = append(kept, e)
			}
		}
		clear(q.items[len(kept):])
		q.items = kept
	}
	if room := q.max - len(q.items); len(front) > room {
		q.dropped.Add(uint64(len(front) - max(room, 0)))
		front = front[:max(room, 0)]
	}
	for _, e := range front {
		q.byKey[e.key] = e
	}
	q.items = append(front, q.items...)
}

// len returns the number of queued entries.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
