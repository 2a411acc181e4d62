package loop

import (
	"runtime"
	"runtime/debug"
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
//   - closes HTTP connections waiting in a Read past fasthttp's deadline (httpConn);
//   - releases pooled buffers of connections idle longer than HibernateAfter;
//   - returns memory to the OS after a wave of hibernations or closes (trimmer).
func (s *Server) reaper() {
	defer s.reapWG.Done()
	t := time.NewTicker(s.tick())
	defer t.Stop()
	var scratch []*Conn
	trim := trimmer{freeMemory: freeMemory}
	ended := s.ended.Load()
	for {
		select {
		case <-s.reap:
			return
		case now := <-t.C:
			s.clock.Store(now.UnixNano())
			scratch = s.snapshot(scratch[:0])
			n := s.sweep(now.UnixNano(), scratch)
			clear(scratch)
			e := s.ended.Load()
			n += int(e - ended) // a closed connection gave back its buffers too
			ended = e
			if s.cfg.HibernateAfter > 0 && trim.after(now.UnixNano(), n) {
				s.trims.Add(1)
			}
		}
	}
}

// sweep applies the timeouts to conns and returns how many it hibernated.
func (s *Server) sweep(now int64, conns []*Conn) (hibernated int) {
	idle, hib, read := int64(s.cfg.IdleTimeout), int64(s.cfg.HibernateAfter), int64(s.cfg.ReadTimeout)
	for _, c := range conns {
		st := c.state.Load()
		if st&(stateClosing|stateGone) != 0 {
			continue
		}
		quiet := now - c.lastActive.Load()
		if st&stateHTTP != 0 {
			if httpDeadlinePassed(c, now) { // fasthttp's read or keep-alive deadline (httpConn)
				c.closeWith(ErrHTTPTimeout)
				continue
			}
			// A quiet HTTP connection (httpConn) holds no read buffer and counts toward
			// the trim wave.
			if hib > 0 && quiet > hib && st&stateHibernated == 0 && s.hibernateHTTP(c) {
				hibernated++
			}
			continue
		}
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
		if hib > 0 && quiet > hib && st&stateHibernated == 0 && s.hibernate(c) {
			hibernated++
		}
	}
	return hibernated
}

func (s *Server) holdsOf(c *Conn) int32 { return c.holds.Load() }

// hibernate releases the connection's pooled reply and carry buffers. It
// skips a connection whose event goroutine is running or that still holds a
// partial frame. It reports whether the connection went to sleep.
//
// A connection that has sent nothing yet still holds the read buffer netpoll
// allocated eagerly at accept; netpoll's Reader.Release drops it (its
// resetTail, when BufferSize is above 8 KiB). The Reader is otherwise used
// only by onRequest, which marks inReq under c.mu before touching it, so
// holding c.mu with !inReq makes this call exclusive. netpoll's poller may
// be filling the buffer at the same time; Release guards against that itself
// (it resets the tail only when the buffer is empty and it wins the
// operator's state).
func (s *Server) hibernate(c *Conn) bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	st := c.state.Load()
	if c.inReq || st&stateGone != 0 {
		return false
	}
	if c.out != nil && len(c.out.B) == 0 {
		c.out.Release()
		c.out = nil
	}
	if c.out == nil && c.fr.release() {
		if st&stateSniffed == 0 && c.np != nil {
			_ = c.np.Reader().Release()
		}
		c.state.Or(stateHibernated)
		s.hibernated.Add(1)
		return true
	}
	return false
}

// Returning memory after hibernation. The buffers a hibernating connection
// gives back go to sync.Pools, which free them only after two garbage
// collections; an idle server allocates nothing, so no collection runs
// (short of the runtime's 2-minute forced one) and the freed pages stay
// resident until the background scavenger gets to them: measured, RSS per
// idle session was ~1.5× the live heap per session. A connection that closes
// leaves the same behind (its buffers, its goroutine's stack, and for HTTP
// fasthttp's pooled request context): an HTTP session outlives its
// connections, so after 19K sessions were initialized on connections since
// closed, RSS held the peak of the wave. So once a wave of hibernations and
// closes has settled (a sweep that finds no further connection gone to sleep
// or closed, or at the latest trimMaxDelay after the wave began) and at least
// trimMinConns connections went to sleep or closed since the last trim, the
// reaper runs two collections and returns free pages to the OS
// (debug.FreeOSMemory). That costs a full GC of the live heap, at most once
// per trimMinInterval.
const (
	trimMinConns    = 256
	trimMinInterval = 10 * time.Second
	trimMaxDelay    = time.Minute
)

// trimmer decides when the reaper returns memory; used by the reaper
// goroutine only.
type trimmer struct {
	pending    int   // connections hibernated or closed since the last trim
	waveStart  int64 // clock when pending became non-zero
	lastTrim   int64
	trims      int
	freeMemory func() // debug.FreeOSMemory after runtime.GC; replaced in tests
}

// after records a sweep that found n connections hibernated or closed at now
// and trims when due. It reports whether it trimmed.
func (t *trimmer) after(now int64, n int) bool {
	if n > 0 {
		if t.pending == 0 {
			t.waveStart = now
		}
		t.pending += n
	}
	if t.pending < trimMinConns || now-t.lastTrim < int64(trimMinInterval) {
		return false
	}
	if n > 0 && now-t.waveStart < int64(trimMaxDelay) {
		return false // the wave goes on: wait for it to settle
	}
	t.pending, t.lastTrim = 0, now
	t.trims++
	t.freeMemory()
	return true
}

func freeMemory() {
	runtime.GC() // sync.Pool: primary → victim
	debug.FreeOSMemory()
}
