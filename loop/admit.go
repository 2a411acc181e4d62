package loop

import "errors"

// AdmitAbove is the size of a connection's unfinished line past which Config.Admit is
// consulted each time the line grows. Below it a line costs at most this much per
// connection whatever Admit says; above it a line grows only while Admit says yes, so
// with a memory guard behind Admit the bytes buffered for unfinished lines stop growing
// within one guard sample of it turning overloaded, instead of each connection holding up
// to MaxFrameBytes.
const AdmitAbove = 64 << 10

// ErrOverloaded closes a connection refused by Config.Admit whose Handler does not
// implement OverloadHandler.
var ErrOverloaded = errors.New("loop: refused by Config.Admit (server overloaded)")

// OverloadHandler is implemented by a Handler that wants to answer refusals by
// Config.Admit itself (e.g. with a JSON-RPC "overloaded" error and a retry delay).
//
// Overloaded is called, on the connection's event goroutine, in two cases:
//   - at Open time, before Handler.Open, for a line-protocol connection accepted while
//     Admit says no (listener only; ServeStream callers admit before calling it). The
//     handler may Reply; the reply is written and the connection closed. Open and Close
//     are not called for it.
//   - when a connection's unfinished line grows past AdmitAbove while Admit says no. The
//     bytes buffered for the line are dropped and the rest of the line is skipped as it
//     arrives, exactly like an oversize line; the handler may Reply and the connection
//     stays open.
//
// A Handler without it gets its refused connection closed with ErrOverloaded in both
// cases, so a client never waits for a reply to a line that was dropped.
type OverloadHandler interface {
	Overloaded(c *Conn)
}

// admitSink is implemented by sinks that admit the growth of an unfinished line (*Conn).
type admitSink interface {
	// admitGrowth reports whether the unfinished line may grow (Config.Admit).
	admitGrowth() bool
	// refused reports a line dropped because admitGrowth said no (once per line).
	refused()
}

// admit is called before the unfinished line grows to n bytes. Past AdmitAbove it asks
// the sink; on a refusal it drops the buffered bytes (giving the buffer back), makes the
// framer skip the rest of the line, tells the sink and returns false.
func (f *framer) admit(n int, s sink) bool {
	if n <= AdmitAbove {
		return true
	}
	a, ok := s.(admitSink)
	if !ok || a.admitGrowth() {
		return true
	}
	if f.partial != nil {
		f.partial.Release()
		f.partial = nil
	}
	f.discarding = true
	a.refused()
	return false
}

// admitGrowth implements admitSink.
func (c *Conn) admitGrowth() bool { return c.cfg.Admit == nil || c.cfg.Admit() }

// refused implements admitSink.
func (c *Conn) refused() {
	if c.state.Load()&stateClosing != 0 {
		return
	}
	if c.srv != nil {
		c.srv.refused.Add(1)
	}
	if h, ok := c.cfg.Handler.(OverloadHandler); ok {
		h.Overloaded(c)
		return
	}
	c.closeWith(ErrOverloaded)
}

// admitOpen is asked by sniff before Handler.Open. When Config.Admit says no, it lets
// the handler answer (OverloadHandler), writes the answer, closes the connection and
// returns false; Open and Close are then never called for it.
func (s *Server) admitOpen(c *Conn) bool {
	if s.cfg.Admit == nil || s.cfg.Admit() {
		return true
	}
	c.state.Or(stateSniffed)
	s.refused.Add(1)
	if h, ok := s.cfg.Handler.(OverloadHandler); ok {
		h.Overloaded(c)
		c.mu.Lock()
		_ = c.flushLocked()
		c.mu.Unlock()
	}
	c.closeWith(ErrOverloaded)
	return false
}
