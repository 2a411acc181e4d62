package loop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/erlmcp/erlmcp-go/pool"
)

// ServeStream serves the line protocol over a blocking reader/writer (stdio;
// TLS connections after the handshake, one goroutine per connection since
// netpoll has no TLS). Handler semantics are those of Listen: Open, Frame
// with batched Reply (one Write per read), Oversize, Close once after all
// Holds are released. If cfg.HTTP is set and r is a net.Conn, the first bytes
// are sniffed as by Listen and an HTTP connection is handed to cfg.HTTP.
//
// When r is a net.Conn, IdleTimeout and ReadTimeout are enforced with read
// deadlines. ServeStream returns when r reports EOF or an error (nil for
// io.EOF), when the connection is closed, or when ctx is done (it then
// unblocks the read by closing or expiring r when possible).
func ServeStream(ctx context.Context, cfg Config, transport string, r io.Reader, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	c := &Conn{cfg: &cfg, w: &lockedCloser{Writer: w, r: r}, transport: transport, dup: -1, fd: -1,
		fr: framer{max: cfg.MaxFrameBytes}}
	c.drained = sync.NewCond(&c.mu)
	nc, _ := r.(net.Conn)

	stop := context.AfterFunc(ctx, func() {
		c.closeWith(ctx.Err())
		if nc != nil {
			_ = nc.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer stop()

	buf := pool.Get(max(cfg.BufferSize, 4096))
	defer func() { buf.Release() }()
	b := buf.B[:cap(buf.B)]

	var readErr error
	first := true
	for {
		if nc != nil {
			d := cfg.IdleTimeout
			if c.fr.pending() > 0 && cfg.ReadTimeout > 0 {
				d = cfg.ReadTimeout
			}
			if d > 0 {
				_ = nc.SetReadDeadline(time.Now().Add(d))
			}
		}
		n, err := r.Read(b)
		if n > 0 && first {
			first = false
			if cfg.HTTP != nil && nc != nil {
				head := b[:n]
				for len(head) < 4 && classify(head) == sniffMore && err == nil {
					var m int
					m, err = r.Read(b[len(head):])
					head = b[:len(head)+m]
				}
				n = len(head)
				if classify(head) == sniffHTTP {
					_ = nc.SetReadDeadline(time.Time{})
					cfg.HTTP(&prefixConn{Conn: nc, prefix: bytes.Clone(head)})
					_ = nc.Close()
					return nil
				}
			}
			c.state.Or(stateSniffed | stateOpened)
			cfg.Handler.Open(c)
		}
		if n > 0 {
			c.mu.Lock()
			c.inReq = true
			c.mu.Unlock()
			c.fr.feed(b[:n], c)
			c.mu.Lock()
			ferr := c.flushLocked()
			c.inReq = false
			c.mu.Unlock()
			if ferr != nil {
				c.closeWith(ferr)
				readErr = ferr
				break
			}
		}
		if err != nil {
			readErr = err
			break
		}
		if c.state.Load()&stateClosing != 0 {
			break
		}
	}
	// Let held work finish and reply (half-close), then close.
	c.mu.Lock()
	for c.holds.Load() > 0 {
		c.drained.Wait()
	}
	c.mu.Unlock()
	var ne net.Error
	switch {
	case c.state.Load()&stateClosing != 0:
	case errors.Is(readErr, io.EOF):
		readErr = nil
	case errors.As(readErr, &ne) && ne.Timeout():
		if c.fr.pending() > 0 {
			readErr = ErrReadTimeout
		} else {
			readErr = ErrIdleTimeout
		}
		c.closeErr.Store(&readErr)
	}
	c.state.Or(stateClosing | stateGone)
	if nc != nil {
		_ = nc.Close()
	}
	c.finish()
	if p := c.closeErr.Load(); p != nil && readErr == nil {
		if *p != nil && !errors.Is(*p, context.Canceled) && !errors.Is(*p, context.DeadlineExceeded) {
			readErr = *p
		}
	}
	return readErr
}

// lockedCloser lets Conn.Close close the stream's reader side (unblocking
// the read loop) when it can.
type lockedCloser struct {
	io.Writer
	r io.Reader
}

func (l *lockedCloser) Close() error {
	if cl, ok := l.r.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// prefixConn replays the sniffed bytes before reading from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
