package loop

import (
	"time"

	"github.com/cloudwego/netpoll"
)

// httpConn is the connection handed to Config.HTTP. It does two things netpoll's own
// net.Conn does not do cheaply.
//
// Read deadlines. fasthttp arms a read deadline before every request (its IdleTimeout
// for the keep-alive wait, then ReadTimeout once the first byte is in). netpoll honours
// one by resetting a timer and selecting on it in every Read that waits, which measured
// 0.4 µs of CPU per request on loopback ping-pong (a runtime timer reset and stop, and a
// two-way select instead of a channel receive). httpConn keeps the deadline itself
// instead: while a Read is in progress the deadline sits in Conn.partialSince (unused
// by HTTP connections otherwise) and the reaper, which sweeps every connection each
// tick anyway, closes one whose deadline has passed (ErrHTTPTimeout). A deadline is so
// enforced within one reaper tick (at most a second) instead of to the nanosecond; a
// handler that runs long (an SSE stream) is never cut, as no Read is waiting then.
// Write deadlines go to netpoll unchanged.
//
// Idle memory (hibernation on). fasthttp reads through netpoll's net.Conn Read, which
// frees the nodes it has read but keeps the tail node: the BufferSize (16 KiB in
// hibernation mode) buffer netpoll made at accept stayed with every HTTP connection for
// life, most of what an idle keep-alive connection costs. Each Read that drains the
// input therefore also calls netpoll's Reader.Release, which drops the drained tail node
// (resetTail) as the line path does after every wakeup; the next bytes get a buffer
// from netpoll's pool. Read also stamps the connection's activity, so the reaper can
// count an HTTP connection quiet for HibernateAfter as hibernated (it holds no read
// buffer by then) and return the memory such a wave freed, as it does for line
// connections.
type httpConn struct {
	netpoll.Connection
	c       *Conn
	release bool  // hibernation on: release the drained read buffer
	readDL  int64 // read deadline (unix nanoseconds), 0 for none; fasthttp's goroutine only
}

// Read reads like netpoll's Read under the read deadline (see httpConn), then releases
// the input buffer once it is drained.
func (hc *httpConn) Read(p []byte) (int, error) {
	c := hc.c
	if hc.readDL != 0 {
		c.partialSince.Store(hc.readDL)
	}
	n, err := hc.Connection.Read(p)
	if hc.readDL != 0 {
		c.partialSince.Store(0)
	}
	if err == nil {
		if hc.release {
			if r := hc.Connection.Reader(); r.Len() == 0 {
				_ = r.Release()
			}
		}
		c.lastActive.Store(c.srv.clock.Load())
		if c.state.Load()&stateHibernated != 0 && c.state.And(^stateHibernated)&stateHibernated != 0 {
			c.srv.hibernated.Add(^uint64(0)) // awake again
		}
	} else if c.closeErrIs(ErrHTTPTimeout) {
		err = ErrHTTPTimeout
	}
	return n, err
}

// SetReadDeadline records the deadline of the next Reads (see httpConn).
func (hc *httpConn) SetReadDeadline(t time.Time) error {
	hc.readDL = 0
	if !t.IsZero() {
		hc.readDL = t.UnixNano()
	}
	return nil
}

// SetDeadline sets the read deadline (see httpConn) and netpoll's write deadline.
func (hc *httpConn) SetDeadline(t time.Time) error {
	_ = hc.SetReadDeadline(t)
	return hc.Connection.SetWriteDeadline(t)
}

// httpDeadlinePassed reports whether c, an HTTP connection, waits in a Read whose
// deadline is before now.
func httpDeadlinePassed(c *Conn, now int64) bool {
	dl := c.partialSince.Load()
	return dl != 0 && now > dl
}

// hibernateHTTP marks an HTTP connection quiet for HibernateAfter as hibernated (its
// read buffer went when its last read drained it) and reports whether it was awake.
func (s *Server) hibernateHTTP(c *Conn) bool {
	if c.state.Or(stateHibernated)&stateHibernated != 0 {
		return false
	}
	s.hibernated.Add(1)
	return true
}
