package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The queueing side of the API: each call costs one queue push (a lock and a map
// lookup), never a Redis round trip. The writer goroutine applies the queue in order.

// SaveSession queues a full write of session id from Config.Sessions (after initialize).
func (c *Cluster) SaveSession(id string) {
	c.q.push(&entry{kind: entrySession, key: "s:" + id, id: id, full: true})
}

// TouchSession queues a refresh of session id's TTL (activity). A record that is gone —
// it expired, or was never written because Redis was down — is written whole again.
// Callers rate-limit it (at most every SessionTTL/4 per session).
func (c *Cluster) TouchSession(id string) {
	c.q.push(&entry{kind: entrySession, key: "s:" + id, id: id})
}

// SetLogLevel queues a change of session id's log level (logging/setLevel).
func (c *Cluster) SetLogLevel(id, level string) {
	c.q.push(&entry{kind: entrySession, key: "s:" + id, id: id, level: level, hasLevel: true})
}

// SetOwner queues a change of the node holding session id's GET stream (an ownership
// claim): the other nodes route the session's messages there from then on.
func (c *Cluster) SetOwner(id, node string) {
	c.q.push(&entry{kind: entrySession, key: "s:" + id, id: id, owner: node, hasOwner: true})
}

// Subscribe queues a subscription (on) or unsubscription of session id to uri.
func (c *Cluster) Subscribe(id, uri string, on bool) {
	c.q.push(&entry{kind: entrySession, key: "s:" + id, id: id, subs: map[string]bool{uri: on}})
}

// DeleteSession queues the removal of session id's record (DELETE); the other nodes are
// told to drop their copies.
func (c *Cluster) DeleteSession(id string) {
	c.q.push(&entry{kind: entrySession, key: "s:" + id, id: id, del: true})
}

// SaveTask queues a write of task id from Config.Tasks.
func (c *Cluster) SaveTask(id string) {
	c.q.push(&entry{kind: entryTask, key: "t:" + id, id: id})
}

// Broadcast queues m for every node (the bus channel); m.From is set to this node.
// Nodes ignore their own broadcasts: deliver locally before calling it.
func (c *Cluster) Broadcast(m Message) { c.publish(c.keys.bus(), m) }

// SendTo queues m for one node's channel.
func (c *Cluster) SendTo(node string, m Message) { c.publish(c.keys.nodeBus(node), m) }

func (c *Cluster) publish(channel string, m Message) {
	m.From = c.cfg.Node
	b, err := json.Marshal(&m)
	if err != nil {
		c.cfg.Logger.Warn("cluster: encoding a bus message", "kind", m.Kind, "err", err)
		return
	}
	c.q.push(&entry{kind: entryPublish, channel: channel, payload: b})
}

// GetSession reads session id's record (re-hydration), bounded by ctx and RedisTimeout.
// It returns ErrNotFound when Redis holds none.
func (c *Cluster) GetSession(ctx context.Context, id string) (*SessionRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	m, err := c.rdb.HGetAll(ctx, c.keys.session(id)).Result()
	if err != nil {
		c.fail("reading session", err)
		return nil, err
	}
	c.ok()
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return DecodeSessionRecord(id, m)
}

// GetTask reads task id's record, bounded by ctx and RedisTimeout; ErrNotFound when
// Redis holds none.
func (c *Cluster) GetTask(ctx context.Context, id string) (*TaskRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	b, err := c.rdb.Get(ctx, c.keys.task(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		c.ok()
		return nil, ErrNotFound
	}
	if err != nil {
		c.fail("reading task", err)
		return nil, err
	}
	c.ok()
	return DecodeTaskRecord(b)
}

// SaveSessionNow writes session id's record from Config.Sessions before returning
// (bounded by ctx and RedisTimeout); on failure it queues SaveSession and returns the
// error. initialize uses it: a load balancer that hashes Mcp-Session-Id (nginx) may send
// the very next request to another node, which must find the record.
func (c *Cluster) SaveSessionNow(ctx context.Context, id string) error {
	rec, ok := c.cfg.Sessions(id)
	if !ok {
		return ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	args := append([]any{strconv.FormatInt(c.cfg.SessionTTL.Milliseconds(), 10)}, rec.appendFields(nil)...)
	if err := c.rdb.Eval(ctx, replaceScript, []string{c.keys.session(id)}, args...).Err(); err != nil {
		c.fail("writing session", err)
		c.SaveSession(id)
		return err
	}
	c.ok()
	return nil
}

// SaveTaskNow writes a task record before returning (bounded by ctx and RedisTimeout):
// a created task's id must work on every node as soon as the client has it, because
// 2026 requests are spread over the nodes without stickiness.
func (c *Cluster) SaveTaskNow(ctx context.Context, rec *TaskRecord) error {
	b, err := EncodeTaskRecord(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	if err := c.rdb.Set(ctx, c.keys.task(rec.ID), b, taskTTL(rec)).Err(); err != nil {
		c.fail("writing task", err)
		return err
	}
	c.ok()
	return nil
}

// SetValue stores a small value every node can read under name (key value:<name>, no
// expiry), before returning, bounded by ctx and RedisTimeout. For tools that keep state
// users expect to see from any node (the demo's note).
func (c *Cluster) SetValue(ctx context.Context, name string, v []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	if err := c.rdb.Set(ctx, c.keys.value(name), v, 0).Err(); err != nil {
		c.fail("writing a value", err)
		return err
	}
	c.ok()
	return nil
}

// Value reads what SetValue stored under name, bounded by ctx and RedisTimeout;
// ErrNotFound when nothing is.
func (c *Cluster) Value(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	b, err := c.rdb.Get(ctx, c.keys.value(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		c.ok()
		return nil, ErrNotFound
	}
	if err != nil {
		c.fail("reading a value", err)
		return nil, err
	}
	c.ok()
	return b, nil
}

func taskTTL(rec *TaskRecord) time.Duration {
	if rec.TTL > 0 {
		return rec.TTL
	}
	return 5 * time.Minute
}

// patchScript applies field changes to a session record only while it exists (a patch
// must not create a record without its protocol version) and refreshes its TTL.
// KEYS[1] record; ARGV[1] TTL ms; ARGV[2] n; ARGV[3..2+n] HSET field/value pairs; the
// rest HDEL fields. Returns 0 when the record is gone.
const patchScript = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + n)) end
if #ARGV > 2 + n then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + n)) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

// replaceScript writes a whole session record atomically. KEYS[1] record; ARGV[1] TTL ms;
// ARGV[2..] field/value pairs.
const replaceScript = `redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

// writeBatch bounds the entries of one pipeline.
const writeBatch = 256

// runWriter applies the queue: one pipeline per batch. A batch that fails because Redis
// is unreachable is put back (publishes are dropped) and retried with backoff.
func (c *Cluster) runWriter() {
	defer c.wg.Done()
	backoff := time.Duration(0)
	for {
		select {
		case <-c.q.wake:
		case <-c.stop:
			return
		}
		for {
			batch := c.q.take(writeBatch)
			if len(batch) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.writeTimeout())
			err := c.write(ctx, batch)
			cancel()
			if err == nil {
				backoff = 0
				continue
			}
			c.q.requeue(batch)
			backoff = min(max(2*backoff, 50*time.Millisecond), c.cfg.Heartbeat, time.Second)
			if !c.sleep(backoff) {
				return
			}
		}
	}
}

// writeTimeout bounds one pipeline of the writer.
func (c *Cluster) writeTimeout() time.Duration { return 4 * c.cfg.RedisTimeout }

// flush writes what is queued, once, bounded by ctx (Close).
func (c *Cluster) flush(ctx context.Context) error {
	for {
		batch := c.q.take(writeBatch)
		if len(batch) == 0 {
			return nil
		}
		if err := c.write(ctx, batch); err != nil {
			return err
		}
	}
}

type patchCmd struct {
	id  string
	cmd *redis.Cmd
}

// write applies one batch in one pipeline. It returns an error only when Redis could not
// be reached (the caller retries); reply errors are logged and counted.
func (c *Cluster) write(ctx context.Context, batch []*entry) error {
	pipe := c.rdb.Pipeline()
	var patches []patchCmd
	pubs := 0
	ttl := strconv.FormatInt(c.cfg.SessionTTL.Milliseconds(), 10)
	for _, e := range batch {
		switch e.kind {
		case entryPublish:
			pipe.Publish(ctx, e.channel, e.payload)
			pubs++
		case entryTask:
			rec, ok := c.cfg.Tasks(e.id)
			if !ok {
				continue
			}
			b, err := EncodeTaskRecord(rec)
			if err != nil {
				c.cfg.Logger.Warn("cluster: encoding a task record", "task", e.id, "err", err)
				continue
			}
			pipe.Set(ctx, c.keys.task(e.id), b, taskTTL(rec))
		case entrySession:
			key := c.keys.session(e.id)
			if e.del {
				pipe.Del(ctx, key)
				pipe.Publish(ctx, c.keys.bus(), c.encode(&Message{Kind: KindSessionEnded, Session: e.id}))
				pubs++
				continue
			}
			if e.full {
				c.replace(ctx, pipe, e.id, ttl)
			}
			// A patch after a full write still applies: the changes merged into the entry
			// may be newer than what Config.Sessions returned.
			if !e.full || e.patches() {
				args := make([]any, 0, 2+2*3+len(e.subs))
				args = append(args, ttl, 0)
				n := 0
				if e.hasLevel {
					args = append(args, fieldLogLevel, e.level)
					n += 2
				}
				if e.hasOwner {
					args = append(args, fieldOwner, e.owner)
					n += 2
				}
				for uri, on := range e.subs {
					if on {
						args = append(args, fieldSubPrefix+uri, "1")
						n += 2
					}
				}
				for uri, on := range e.subs {
					if !on {
						args = append(args, fieldSubPrefix+uri)
					}
				}
				args[1] = n
				cmd := pipe.Eval(ctx, patchScript, []string{key}, args...)
				if !e.full {
					patches = append(patches, patchCmd{e.id, cmd})
				}
			}
			if e.patches() {
				m := &Message{Kind: KindSessionChanged, Session: e.id, Owner: e.owner, Subs: e.subs}
				if e.hasLevel {
					lvl := e.level
					m.Level = &lvl
				}
				pipe.Publish(ctx, c.keys.bus(), c.encode(m))
				pubs++
			}
		}
	}
	if pipe.Len() == 0 {
		return nil
	}
	if err := c.exec(ctx, pipe, "writing"); err != nil {
		return err
	}
	c.published.Add(uint64(pubs))
	// Records that were gone (expired, or never written while Redis was down) are
	// written whole from what this node holds.
	var missing []string
	for _, p := range patches {
		if v, err := p.cmd.Int(); err == nil && v == 0 {
			missing = append(missing, p.id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	again := c.rdb.Pipeline()
	for _, id := range missing {
		c.replace(ctx, again, id, ttl)
	}
	if again.Len() > 0 && c.exec(ctx, again, "rewriting expired sessions") != nil {
		for _, id := range missing {
			c.SaveSession(id) // queued again; this batch is done
		}
	}
	return nil
}

// replace queues the full write of session id into pipe, when this node holds it.
func (c *Cluster) replace(ctx context.Context, pipe redis.Pipeliner, id, ttl string) {
	rec, ok := c.cfg.Sessions(id)
	if !ok {
		return
	}
	args := append([]any{ttl}, rec.appendFields(nil)...)
	pipe.Eval(ctx, replaceScript, []string{c.keys.session(id)}, args...)
}

// exec runs a pipeline: an unreachable Redis is an error (the state turns down); reply
// errors of single commands are counted and logged, the rest of the pipeline stands.
func (c *Cluster) exec(ctx context.Context, pipe redis.Pipeliner, what string) error {
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		c.ok()
		return nil
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		c.fail(what, err)
		return err
	}
	c.ok()
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) {
			c.errs.Add(1)
			c.cfg.Logger.Warn("cluster: redis refused a command", "op", what, "cmd", cmd.Name(), "err", e)
		}
	}
	return nil
}

// encode marshals a message from this node.
func (c *Cluster) encode(m *Message) []byte {
	m.From = c.cfg.Node
	b, _ := json.Marshal(m) // plain strings and maps: cannot fail
	return b
}
