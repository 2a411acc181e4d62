package loop

import (
	"time"
)

// Reaper tick bounds. The tick is a quarter of the smallest timeout so a
// deadline is enforced within ~25% of its value, clamped so tests with tiny
// timeouts work and production servers wake at most once a second.
const (
	minTick = 10 * time.Millisecond
	maxTick = time.Second
)

func (s *Server) tick() time.Duration {
	d := maxTick
	for _, t := range []time.Duration{s.cfg.IdleTimeout, s.cfg.HibernateAfter, s.cfg.ReadTimeout} {
		if t > 0 && t/4 < d {
			d = t / 4
		}
	}
	return max(d, minTick)
}

// reaper is the server's single housekeeping goroutine. Each tick it updates
// the coarse clock (so the hot path never calls time.Now) and scans the
// fd-indexed registry once: a sequential pass over 100K pointers with a few
// atomic loads each costs well under a millisecond, cheaper and simpler than
// a timer wheel and with no per-connection timer. It
//   - closes connections idle longer than IdleTimeout with no Hold;
//   - closes connections whose partial frame is older than ReadTimeout;
//   - releases pooled buffers of connections idle longer than HibernateAfter.
func (s *Server) reaper() {
	defer s.reapWG.Done()
	t := time.NewTicker(s.tick())
	defer t.Stop()
	var scratch []*Conn
	for {
		select {
		case <-s.reap:
			return
		case now := <-t.C:
			s.clock.Store(now.UnixNano())
			scratch = s.snapshot(scratch[:0])
			s.sweep(now.UnixNano(), scratch)
			clear(scratch)
		}
	}
}

func (s *Server) sweep(now int64, conns []*Conn) {
	idle, hib, read := int64(s.cfg.IdleTimeout), int64(s.cfg.HibernateAfter), int64(s.cfg.ReadTimeout)
	for _, c := range conns {
		st := c.state.Load()
		if st&(stateHTTP|stateClosing|stateGone) != 0 {
			continue // HTTP connections are fasthttp's to time out
		}
		quiet := now - c.lastActive.Load()
		if read > 0 {
			if since := c.partialSince.Load(); since != 0 && now-since > read {
				c.closeWith(ErrReadTimeout)
				continue
			}
		}
		if idle > 0 && quiet > idle && s.holdsOf(c) == 0 {
			c.closeWith(ErrIdleTimeout)
			continue
		}
		if hib > 0 && quiet > hib && st&stateHibernated == 0 {
			s.hibernate(c)
		}
	}
}

func (s *Server) holdsOf(c *Conn) int32 { return c.holds.Load() }

// hibernate releases the connection's pooled reply and carry buffers. It
// skips a connection whose event goroutine is running or that still holds a
// partial frame.
func (s *Server) hibernate(c *Conn) {
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if c.inReq || c.state.Load()&stateGone != 0 {
		return
	}
	if c.out != nil && len(c.out.B) == 0 {
		c.out.Release()
		c.out = nil
	}
	if c.out == nil && c.fr.release() {
		c.state.Or(stateHibernated)
		s.hibernated.Add(1)
	}
}
