package loop

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/erlmcp/erlmcp-go/pool"
)

// Errors passed to Handler.Close and returned by Conn methods.
var (
	// ErrClosed is returned by Send on a closed connection.
	ErrClosed = errors.New("loop: connection closed")
	// ErrIdleTimeout closes a connection idle for longer than Config.IdleTimeout.
	ErrIdleTimeout = errors.New("loop: idle timeout (Config.IdleTimeout)")
	// ErrReadTimeout closes a connection whose partial frame was not completed
	// within Config.ReadTimeout.
	ErrReadTimeout = errors.New("loop: frame not completed within read timeout (Config.ReadTimeout)")
	// ErrHTTPTimeout closes an HTTP connection whose Read outlived the deadline
	// fasthttp set (its ReadTimeout while reading a request, its IdleTimeout
	// between keep-alive requests); the Read returns it.
	ErrHTTPTimeout = errors.New("loop: HTTP read deadline passed (read or keep-alive idle timeout)")
	// ErrWriteTimeout closes a connection whose peer did not read replies
	// within Config.WriteTimeout.
	ErrWriteTimeout = errors.New("loop: write timeout (Config.WriteTimeout)")
	// ErrServerClosed closes connections on Shutdown.
	ErrServerClosed = errors.New("loop: server shut down")
)

// Handler receives line-protocol connection events. Calls for one connection
// never overlap, except Close, which may run while a goroutine that called
// Hold still works (it runs only after the last Release, see Conn.Hold).
type Handler interface {
	// Open announces a new line-protocol connection (after sniffing, at its
	// first bytes). It may call c.SetValue.
	Open(c *Conn)
	// Frame delivers one complete frame, newline and a trailing '\r' removed;
	// empty lines are skipped. frame aliases the read buffer and is valid only
	// until Frame returns: copy what must outlive it. Reply with c.Reply.
	// Frame runs on the connection's event goroutine: do slow work on a
	// worker (pool.Workers) between c.Hold() and c.Release().
	Frame(c *Conn, frame []byte)
	// Oversize reports a line longer than limit (Config.MaxFrameBytes), with
	// head, its first bytes (at most limit; what was buffered when the limit
	// was crossed), so the handler can answer with the request's id when it
	// stands there. head aliases the read buffer and is valid only until
	// Oversize returns. The handler may Reply an error; the loop skips the
	// rest of the line without buffering it and the connection stays open.
	Oversize(c *Conn, limit int, head []byte)
	// Close reports that the connection is gone (peer close: io.EOF; idle:
	// ErrIdleTimeout; ErrReadTimeout; ErrWriteTimeout; ErrServerClosed; nil
	// after c.Close). It is called once, only for connections that were
	// Opened, after all Holds are Released.
	Close(c *Conn, err error)
}

// Conn is one line-protocol connection. Methods are safe for concurrent use
// unless stated otherwise.
//
// Per-connection memory is what makes 100K idle sessions cheap: Conn has no
// goroutine, timer or channel; its pooled buffers are released when idle
// (hibernation), and with the default BufferSize netpoll's read buffer is
// released after every wakeup, so what stays is netpoll's fixed per-connection
// state (~2.6 KB, most of it its write barrier) and this struct.
type Conn struct {
	srv       *Server            // nil for ServeStream connections
	np        netpoll.Connection // nil for ServeStream connections
	w         io.Writer          // ServeStream writer; nil for netpoll connections
	cfg       *Config            // shared, read-only
	fd        int                // netpoll socket fd
	transport string

	// mu guards the fields below and serializes every write to the socket.
	mu      sync.Mutex
	inReq   bool         // an event callback (OnRequest) runs: the socket fd is guaranteed open
	out     *pool.Buffer // replies queued during the current wakeup; kept between wakeups until hibernation
	fr      framer       // touched by the event goroutine; by the reaper only under mu when !inReq
	dup     int32        // dup of fd taken on the first Hold, -1 if none (see Hold)
	holds   atomic.Int32 // outstanding Holds; written under mu, read lock-free by the reaper
	drained *sync.Cond   // ServeStream only: signalled when holds drop to 0

	state        atomic.Uint32         // stateX flags
	lastActive   atomic.Int64          // coarse clock value of the last read or write
	partialSince atomic.Int64          // line: coarse clock value when the pending partial frame began; HTTP: deadline of the Read in progress (httpConn); 0 if none
	closeErr     atomic.Pointer[error] // first close reason

	value any
	ctx   connCtx // handed to netpoll as the connection's context (no extra allocation)
}

// Conn state flags.
const (
	stateOpened     uint32 = 1 << iota // Handler.Open was called
	stateClosing                       // Close requested (by us, the handler or a timeout)
	stateGone                          // netpoll closed the connection (fd about to be closed)
	stateFinished                      // Handler.Close ran (or will run)
	stateHTTP                          // handed to Config.HTTP
	stateSniffed                       // protocol decided
	stateHibernated                    // pooled buffers released
)

// connCtx is the context netpoll passes back to OnRequest; it carries the
// *Conn so the hot path does no map lookup.
type connCtx struct {
	context.Context
	c *Conn
}

// Reply queues p plus '\n' for the end of the current wakeup: all replies
// of all frames of one wakeup are written with one Flush. Call it only from
// inside Handler.Frame or Handler.Oversize; p is copied and may be reused
// after Reply returns.
func (c *Conn) Reply(p []byte) {
	c.mu.Lock()
	c.appendOutLocked(p)
	c.mu.Unlock()
}

func (c *Conn) appendOutLocked(p []byte) {
	if c.out == nil {
		c.out = pool.Get(len(p) + 1)
	}
	c.out.B = append(c.out.B, p...)
	c.out.B = append(c.out.B, '\n')
}

// Send writes p plus '\n' now, together with any replies queued before it,
// and waits until the socket took it (or WriteTimeout). It is safe from any
// goroutine, concurrently with Reply and other Sends. After the peer
// half-closed, Send still delivers while a Hold taken inside Frame is
// outstanding. p may be reused after Send returns.
func (c *Conn) Send(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.inReq {
		s := c.state.Load()
		if s&stateClosing != 0 || (s&stateGone != 0 && c.dup < 0) {
			return ErrClosed
		}
	}
	c.appendOutLocked(p)
	return c.flushLocked()
}

// flushLocked writes the queued replies. c.mu must be held.
func (c *Conn) flushLocked() error {
	if c.out == nil || len(c.out.B) == 0 {
		return nil
	}
	err := c.writeLocked(c.out.B)
	if c.srv != nil {
		c.srv.bytesOut.Add(uint64(len(c.out.B)))
		c.srv.writes.Add(1)
	}
	c.out.B = c.out.B[:0]
	if cap(c.out.B) > 64<<10 { // do not keep big buffers between wakeups
		c.out.Release()
		c.out = nil
	}
	return err
}

// writeLocked writes p to the peer. c.mu must be held.
//
// Fast path: write(2) straight from our reply buffer on a descriptor that is
// certainly open: the netpoll fd while an OnRequest runs (netpoll closes it
// only after OnRequest returns) or the dup taken by the first Hold. This
// skips netpoll's output LinkBuffer entirely, which saves a copy and, measured
// by TestIdleMemory, ~1 KiB per idle connection (netpoll keeps the last output
// node allocated forever once used). Raw writes never use the netpoll fd
// outside OnRequest: netpoll may close it at any moment and the number may be
// reused by a new connection.
//
// Slow path (socket buffer full, or Send from another goroutine with no Hold):
// netpoll's Writer (Malloc+copy+Flush), whose Flush parks the goroutine on the
// poller until the slow reader drains or WriteTimeout passes.
//
// Half-close: netpoll treats EPOLLRDHUP as a full close, so once the peer sent
// FIN its Flush fails with "connection has been closed" although the socket
// still accepts writes. The fast path is unaffected; if the slow path's Flush
// fails before taking the bytes (MallocLen still equals len(p)) and a raw fd
// is available, the bytes are written with write(2) + poll(POLLOUT) up to
// WriteTimeout. Otherwise the bytes are lost and the connection is closed.
func (c *Conn) writeLocked(p []byte) error {
	if c.w != nil {
		_, err := c.w.Write(p)
		return err
	}
	fd := -1
	if c.inReq {
		fd = c.fd
	} else if c.dup >= 0 {
		fd = int(c.dup)
	}
	if fd >= 0 {
		n, err := writeNonblock(fd, p)
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return err // peer reset: the connection is going away
		}
	}
	if c.np.IsActive() {
		w := c.np.Writer()
		buf, err := w.Malloc(len(p))
		if err == nil {
			copy(buf, p)
			err = w.Flush()
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, netpoll.ErrWriteTimeout) {
			c.closeWith(ErrWriteTimeout)
			return ErrWriteTimeout
		}
		if w.MallocLen() != len(p) || fd < 0 { // netpoll took (some of) the bytes: cannot resend safely
			c.closeWith(err)
			return err
		}
	}
	if fd < 0 {
		return ErrClosed
	}
	if err := rawWrite(fd, p, c.cfg.WriteTimeout); err != nil {
		c.logger().Debug("loop: write after peer half-close failed", "remote", c.RemoteAddr(), "err", err)
		return err
	}
	return nil
}

// Hold tells the loop that the handler has async work in flight for this
// connection: the idle reaper and Shutdown wait for it, and Handler.Close is
// delayed until the matching Release. Call Hold from inside Handler.Frame (or
// Oversize) before handing work to another goroutine; the first Hold there
// also dups the socket so replies still reach a peer that half-closed
// (nc -N). A Hold taken elsewhere still delays Close and Shutdown but cannot
// protect the socket. If dup fails (EMFILE) the hold degrades: replies after a
// half-close may be lost (logged at Warn).
func (c *Conn) Hold() {
	c.mu.Lock()
	n := c.holds.Add(1)
	if c.srv != nil {
		c.srv.holds.Add(1)
	}
	if n == 1 && c.np != nil && c.inReq && c.dup < 0 {
		if fd, err := dupFD(c.fd); err == nil {
			c.dup = int32(fd)
		} else {
			c.logger().Warn("loop: dup of connection fd failed; replies after a half-close may be lost", "err", err)
		}
	}
	c.mu.Unlock()
}

// Release ends one Hold. The last Release of a connection that netpoll has
// already closed runs Handler.Close.
func (c *Conn) Release() {
	c.mu.Lock()
	n := c.holds.Add(-1)
	if n < 0 {
		c.mu.Unlock()
		panic("loop: Conn.Release without Hold")
	}
	if c.srv != nil {
		c.srv.holds.Add(-1)
	}
	last := n == 0
	if last {
		if c.dup >= 0 {
			closeFD(int(c.dup))
			c.dup = -1
		}
		if c.drained != nil {
			c.drained.Broadcast()
		}
	}
	c.mu.Unlock()
	if last && c.state.Load()&stateGone != 0 {
		c.finish()
	}
}

// Close closes the connection. Queued replies of the current wakeup are
// still written. Handler.Close follows (after outstanding Holds end).
// Close is idempotent.
func (c *Conn) Close() error {
	c.closeWith(nil)
	return nil
}

// closeWith records err as the close reason (first one wins) and closes.
func (c *Conn) closeWith(err error) {
	for {
		s := c.state.Load()
		if s&stateClosing != 0 {
			return
		}
		if c.state.CompareAndSwap(s, s|stateClosing) {
			break
		}
	}
	c.closeErr.Store(&err)
	if c.np != nil {
		_ = c.np.Close()
		return
	}
	if cl, ok := c.w.(io.Closer); ok {
		_ = cl.Close()
	}
}

// closeErrIs reports whether the connection was closed for err.
func (c *Conn) closeErrIs(err error) bool {
	p := c.closeErr.Load()
	return p != nil && *p == err
}

// Closed reports whether the connection is closed or closing.
func (c *Conn) Closed() bool { return c.state.Load()&(stateClosing|stateGone) != 0 }

// SetValue stores handler state for the connection.
func (c *Conn) SetValue(v any) { c.value = v }

// Value returns what SetValue stored. SetValue/Value are not synchronized:
// set it in Open, read it from Frame and from goroutines started there.
func (c *Conn) Value() any { return c.value }

// Transport returns "tcp" for listener connections or the name given to
// ServeStream.
func (c *Conn) Transport() string { return c.transport }

// RemoteAddr returns the peer address (nil for non-network streams).
func (c *Conn) RemoteAddr() net.Addr {
	if c.np != nil {
		return c.np.RemoteAddr()
	}
	if nc := c.streamConn(); nc != nil {
		return nc.RemoteAddr()
	}
	return nil
}

func (c *Conn) streamConn() net.Conn {
	if lc, ok := c.w.(*lockedCloser); ok {
		nc, _ := lc.r.(net.Conn)
		return nc
	}
	return nil
}

// LocalAddr returns the local address (nil for non-network streams).
func (c *Conn) LocalAddr() net.Addr {
	if c.np != nil {
		return c.np.LocalAddr()
	}
	if nc := c.streamConn(); nc != nil {
		return nc.LocalAddr()
	}
	return nil
}

func (c *Conn) logger() interface {
	Debug(string, ...any)
	Warn(string, ...any)
} {
	return c.cfg.Logger
}

// frame implements sink.
func (c *Conn) frame(p []byte) {
	if c.state.Load()&stateClosing != 0 {
		return
	}
	if c.srv != nil {
		c.srv.frames.Add(1)
	}
	c.cfg.Handler.Frame(c, p)
}

// oversize implements sink.
func (c *Conn) oversize(head []byte) {
	if c.state.Load()&stateClosing != 0 {
		return
	}
	if c.srv != nil {
		c.srv.oversize.Add(1)
	}
	c.cfg.Handler.Oversize(c, c.cfg.MaxFrameBytes, head)
}

// finish runs once when the connection is gone and no Hold is outstanding:
// it frees pooled buffers and calls Handler.Close.
func (c *Conn) finish() {
	c.mu.Lock()
	if c.holds.Load() > 0 || c.state.Load()&stateFinished != 0 {
		c.mu.Unlock() // the last Release finishes
		return
	}
	c.state.Or(stateFinished)
	if c.out != nil {
		c.out.Release()
		c.out = nil
	}
	c.fr.reset()
	c.mu.Unlock()
	var err error = io.EOF // closed by the peer
	if p := c.closeErr.Load(); p != nil {
		err = *p
	}
	if c.state.Load()&stateOpened != 0 {
		c.cfg.Handler.Close(c, err)
	}
	if c.srv != nil {
		c.srv.connDone(c)
	}
}
