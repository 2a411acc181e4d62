package cluster

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// runBus receives the broadcast channel and this node's channel until Close. go-redis's
// PubSub re-dials and re-subscribes by itself on the Receive after a broken connection;
// this loop only backs off between failed attempts, keeps the subscribed state, and pings
// a quiet connection once per heartbeat so that a dead one is noticed.
func (c *Cluster) runBus() {
	defer c.wg.Done()
	ctx := context.Background()
	backoff := time.Duration(0)
	pinged := false // a ping is out and no answer came yet
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		msg, err := c.ps.ReceiveTimeout(ctx, c.cfg.Heartbeat)
		if err != nil {
			if c.closing() {
				return
			}
			if isTimeout(err) {
				if pinged {
					c.subOK.Store(false)
					c.fail("pub/sub", errors.New("no answer to PING within a heartbeat"))
				}
				pinged = c.ps.Ping(ctx) == nil
				continue
			}
			c.subOK.Store(false)
			c.fail("pub/sub", err)
			pinged = false
			backoff = min(max(2*backoff, 50*time.Millisecond), c.cfg.Heartbeat, time.Second)
			if !c.sleep(backoff) {
				return
			}
			continue
		}
		backoff = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				c.subOK.Store(true)
				c.logState()
			}
		case *redis.Pong:
			pinged = false
			if !c.subOK.Load() {
				c.subOK.Store(true) // subscribed before the answer that went missing
				c.logState()
			}
		case *redis.Message:
			c.receive([]byte(m.Payload))
		}
	}
}

// receive hands one payload to Config.OnMessage, except this node's own broadcasts.
func (c *Cluster) receive(payload []byte) {
	m, err := decodeMessage(payload)
	if err != nil {
		c.errs.Add(1)
		c.cfg.Logger.Warn("cluster: undecodable bus message", "err", err, "len", len(payload))
		return
	}
	if m.From == c.cfg.Node {
		return
	}
	c.received.Add(1)
	c.cfg.OnMessage(m)
}

func (c *Cluster) closing() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
