package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// runHeartbeat refreshes the node's registry record every Heartbeat until Close.
func (c *Cluster) runHeartbeat() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.beat()
		if c.cfg.Tick != nil {
			c.cfg.Tick()
		}
		if c.cmdOK.Load() && c.q.len() > 0 {
			select { // Redis is back: let a writer waiting out its backoff know
			case c.q.wake <- struct{}{}:
			default:
			}
		}
	}
}

// beat writes this node's record, prunes the records of nodes that stopped, reads the
// registry, and agrees on the request-state key: two round trips.
func (c *Cluster) beat() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.cfg.RedisTimeout)
	defer cancel()
	now := time.Now()
	ttl := nodeTTLBeats * c.cfg.Heartbeat
	info, _ := json.Marshal(NodeInfo{Name: c.cfg.Node, Addr: *c.addr.Load(), Version: c.cfg.Version,
		Sessions: c.cfg.LocalSessions(), Started: c.started.UnixMilli(), Seen: now.UnixMilli(), Instance: c.instance})
	pipe := c.rdb.Pipeline()
	pipe.Set(ctx, c.keys.node(c.cfg.Node), info, ttl)
	pipe.ZAdd(ctx, c.keys.nodes(), redis.Z{Score: float64(now.UnixMilli()), Member: c.cfg.Node})
	pipe.ZRemRangeByScore(ctx, c.keys.nodes(), "-inf", "("+strconv.FormatInt(now.Add(-ttl).UnixMilli(), 10))
	names := pipe.ZRange(ctx, c.keys.nodes(), 0, -1)
	var agreed *redis.StringCmd
	if len(c.cfg.StateKey) == 0 {
		// SETNX then GET in one pipeline: the first node's key wins, and a Redis that lost
		// it (restarted without persistence) gets this node's key back.
		mine := c.StateKey()
		if mine == nil {
			mine = make([]byte, 32)
			_, _ = rand.Read(mine)
		}
		pipe.SetNX(ctx, c.keys.stateKey(), hex.EncodeToString(mine), 0)
		agreed = pipe.Get(ctx, c.keys.stateKey())
	}
	if err := c.exec(ctx, pipe, "heartbeat"); err != nil {
		return
	}
	if agreed != nil {
		c.adoptStateKey(agreed.Val())
	}
	c.readRegistry(ctx, names.Val())
}

// readRegistry reads the records of the nodes named in the registry; a node whose record
// expired is left out (its name is pruned from the zset by score).
func (c *Cluster) readRegistry(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = c.keys.node(n)
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		c.fail("reading the node registry", err)
		return
	}
	nodes := make([]NodeInfo, 0, len(vals))
	live := make(map[string]struct{}, len(vals))
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var n NodeInfo
		if json.Unmarshal([]byte(s), &n) != nil || n.Name == "" {
			continue
		}
		nodes = append(nodes, n)
		live[n.Name] = struct{}{}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	c.nodes.Store(&nodes)
	c.live.Store(&live)
}

// StateKey returns the key sealing 2026 requestState: Config.StateKey, or the one the
// nodes agreed on through Redis; nil until the first heartbeat reached Redis.
func (c *Cluster) StateKey() []byte {
	if k := c.stateKey.Load(); k != nil {
		return *k
	}
	return nil
}

// PreviousStateKey returns the agreed key before the current one (Redis lost the key and
// another node's won), or nil; states sealed with it are still accepted.
func (c *Cluster) PreviousStateKey() []byte {
	if k := c.prevStateKey.Load(); k != nil {
		return *k
	}
	return nil
}

func (c *Cluster) adoptStateKey(v string) {
	k, err := hex.DecodeString(v)
	if err != nil || len(k) < 16 {
		c.fail("agreeing on the state key", errors.New("state_key in redis is not 16+ bytes of hex"))
		return
	}
	cur := c.stateKey.Load()
	if cur != nil && bytes.Equal(*cur, k) {
		return
	}
	if cur != nil {
		c.prevStateKey.Store(cur)
	}
	c.stateKey.Store(&k)
}
