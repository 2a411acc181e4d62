package loop

import (
	"bytes"
	"context"
	"time"

	"github.com/cloudwego/netpoll"
)

// onRequest is netpoll's OnRequest. netpoll calls it again while unread bytes
// remain, so it consumes everything it is given: complete frames are
// delivered in place, a trailing partial frame is copied into the framer's
// pooled buffer, and the netpoll buffer is skipped and released.
func (s *Server) onRequest(ctx context.Context, np netpoll.Connection) error {
	c := ctx.(*connCtx).c
	st := c.state.Load()
	if st&stateSniffed == 0 {
		// inReq keeps the reaper's hibernate (which releases netpoll's
		// eager read buffer of a connection that has sent nothing yet) off
		// the Reader while sniff uses it.
		c.mu.Lock()
		c.inReq = true
		c.mu.Unlock()
		if !s.sniff(c, np) {
			return nil // served as HTTP; the connection is closed
		}
	}
	r := np.Reader()
	n := r.Len()
	if n == 0 {
		return nil
	}
	c.mu.Lock()
	c.inReq = true
	if c.state.Load()&stateHibernated != 0 {
		c.state.And(^stateHibernated)
		s.hibernated.Add(^uint64(0))
	}
	c.mu.Unlock()

	buf, err := r.Peek(n)
	if err == nil {
		c.fr.feed(buf, c)
	}
	_ = r.Skip(n)
	_ = r.Release()
	now := s.clock.Load()
	c.lastActive.Store(now)
	if c.fr.pending() > 0 {
		if c.partialSince.Load() == 0 {
			c.partialSince.Store(now)
		}
	} else if c.partialSince.Load() != 0 {
		c.partialSince.Store(0)
	}
	s.bytesIn.Add(uint64(n))
	s.wakeups.Add(1)

	c.mu.Lock()
	_ = c.flushLocked()
	c.inReq = false
	c.mu.Unlock()
	return nil
}

// httpMethods are the request-line prefixes that route a connection to
// Config.HTTP ("PRI " is the HTTP/2 preface).
var httpMethods = [...]string{"GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "PRI "}

// sniffTimeout bounds how long the first OnRequest waits for a fourth byte
// when the first ones are a prefix of an HTTP method.
const sniffTimeout = 5 * time.Second

// sniff decides the protocol on the first bytes. It returns true for the line
// protocol (after Handler.Open) and false when the connection was served by
// Config.HTTP or refused by Config.Admit (and is closed).
//
// Waiting for 4 bytes must not spin OnRequest: when fewer than 4 bytes are
// buffered and they could still start an HTTP method, sniff blocks in
// Reader.Peek(4) under a read deadline (bounded by ReadTimeout and
// sniffTimeout), which parks the goroutine until the poller delivers more.
// Anything that cannot start a method ('{', '[', whitespace) is decided at once.
func (s *Server) sniff(c *Conn, np netpoll.Connection) bool {
	if s.cfg.HTTP != nil {
		r := np.Reader()
		n := min(r.Len(), 4)
		head, _ := r.Peek(n)
		kind := classify(head)
		if kind == sniffMore {
			d := sniffTimeout
			if s.cfg.ReadTimeout > 0 && s.cfg.ReadTimeout < d {
				d = s.cfg.ReadTimeout
			}
			_ = np.SetReadDeadline(time.Now().Add(d))
			if h, err := r.Peek(4); err == nil {
				kind = classify(h)
			} else {
				kind = sniffLines
			}
			_ = np.SetReadDeadline(time.Time{})
		}
		if kind == sniffHTTP {
			c.state.Or(stateSniffed | stateHTTP)
			s.activeLine.Add(^uint64(0))
			s.activeHTTP.Add(1)
			// Read deadlines kept by the reaper; with hibernation, the read buffer released when drained.
			s.cfg.HTTP(&httpConn{Connection: np, c: c, release: s.cfg.HibernateAfter > 0})
			c.closeWith(nil)
			return false
		}
	}
	if !s.admitOpen(c) {
		return false // refused by Config.Admit; the connection is closed
	}
	c.state.Or(stateSniffed | stateOpened)
	s.cfg.Handler.Open(c)
	return true
}

type sniffKind int

const (
	sniffLines sniffKind = iota
	sniffHTTP
	sniffMore // a strict prefix of an HTTP method: need more bytes
)

func classify(head []byte) sniffKind {
	for _, m := range httpMethods {
		if len(head) >= 4 {
			if string(head[:4]) == m {
				return sniffHTTP
			}
		} else if len(head) > 0 && bytes.HasPrefix([]byte(m), head) {
			return sniffMore
		}
	}
	return sniffLines
}
