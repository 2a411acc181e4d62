package loop

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
)

// Server is a netpoll listener serving the line protocol (and, when
// Config.HTTP is set, HTTP on the same port).
type Server struct {
	cfg  Config
	ln   *listener
	evl  netpoll.EventLoop
	quit chan struct{} // closed when Shutdown is complete
	reap chan struct{} // closed to stop the reaper

	shutdown atomic.Bool
	clock    atomic.Int64 // coarse clock (UnixNano), updated by the reaper tick

	// Registry of live netpoll connections, indexed by fd: fds are small and
	// dense, so a slice costs 8 bytes per slot and the reaper scans it
	// sequentially.
	mu    sync.Mutex
	conns []*Conn

	holds atomic.Int64  // outstanding Holds over all connections
	live  atomic.Int64  // accepted connections whose finish has not run
	ended atomic.Uint64 // connections whose finish has run (the reaper's trim waves)

	// Stats counters.
	accepted, activeLine, activeHTTP, bytesIn, bytesOut, frames, oversize, refused, hibernated, wakeups, writes, trims atomic.Uint64
	reapWG                                                                                                             sync.WaitGroup
	shutdownOnce                                                                                                       sync.Once
	shutdownErr                                                                                                        error
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	ActiveLine uint64 // open line-protocol connections (including not yet sniffed)
	ActiveHTTP uint64 // connections handed to Config.HTTP and still open
	Accepted   uint64 // connections accepted since Listen
	BytesIn    uint64 // bytes read on line-protocol connections
	BytesOut   uint64 // bytes written by Reply/Send
	Frames     uint64 // frames delivered to Handler.Frame
	Oversize   uint64 // lines reported to Handler.Oversize
	Refused    uint64 // connections and unfinished lines refused by Config.Admit
	Hibernated uint64 // connections currently hibernated (pooled buffers released)
	Wakeups    uint64 // OnRequest calls that consumed bytes
	Writes     uint64 // socket writes (one per wakeup with replies, one per Send)
	Holds      int64  // outstanding Holds
	Trims      uint64 // times the reaper returned memory to the OS after a wave of hibernations or closes
}

var (
	configureOnce sync.Once
	configured    struct{ pollers, bufferSize int }
)

// debugWriter turns netpoll's log lines into Debug records.
type debugWriter struct{ log *slog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug("netpoll: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// configure applies the process-wide netpoll settings once.
func configure(cfg *Config) error {
	var err error
	configureOnce.Do(func() {
		// LinkBufferCap is netpoll's minimum buffer node size (4 KiB by
		// default); without lowering it a 1 KiB BufferSize still costs 4 KiB
		// per idle connection.
		if cfg.BufferSize < netpoll.LinkBufferCap {
			netpoll.LinkBufferCap = cfg.BufferSize
		}
		err = netpoll.Configure(netpoll.Config{
			PollerNum:  cfg.Pollers,
			BufferSize: cfg.BufferSize,
			// netpoll prints every peer reset ("readall … connection reset by
			// peer") to stderr; those are routine, so they go to our log at Debug.
			LoggerOutput: debugWriter{cfg.Logger},
		})
		configured.pollers, configured.bufferSize = cfg.Pollers, cfg.BufferSize
	})
	if err != nil {
		return fmt.Errorf("loop: netpoll.Configure: %w", err)
	}
	if cfg.Pollers != configured.pollers || cfg.BufferSize != configured.bufferSize {
		cfg.Logger.Warn("loop: netpoll is configured once per process; ignoring Pollers/BufferSize of this listener",
			"pollers", cfg.Pollers, "bufferSize", cfg.BufferSize,
			"inEffectPollers", configured.pollers, "inEffectBufferSize", configured.bufferSize)
	}
	return nil
}

// Listen validates cfg, binds the listener (so Addr is known) and returns a
// Server; serving starts with Serve. cfg is copied.
func Listen(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := configure(&cfg); err != nil {
		return nil, err
	}
	nl := cfg.Listener
	if nl == nil {
		var err error
		if nl, err = net.Listen(cfg.Network, cfg.Addr); err != nil {
			return nil, fmt.Errorf("loop: listen %s %s: %w", cfg.Network, cfg.Addr, err)
		}
	}
	s := &Server{
		cfg:  cfg,
		quit: make(chan struct{}),
		reap: make(chan struct{}),
	}
	var err error
	if s.ln, err = newListener(s, nl); err != nil {
		nl.Close()
		return nil, err
	}
	s.clock.Store(time.Now().UnixNano())
	opts := []netpoll.Option{
		netpoll.WithOnPrepare(s.onPrepare),
	}
	if cfg.WriteTimeout > 0 {
		opts = append(opts, netpoll.WithWriteTimeout(cfg.WriteTimeout))
	}
	s.evl, err = netpoll.NewEventLoop(s.onRequest, opts...)
	if err != nil {
		s.ln.Close()
		return nil, err
	}
	s.reapWG.Add(1)
	go s.reaper()
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts and serves connections until Shutdown. It returns nil after
// Shutdown, or the error that stopped the listener.
func (s *Server) Serve() error {
	err := s.evl.Serve(s.ln)
	if s.shutdown.Load() {
		<-s.quit
		return nil
	}
	return err
}

// Shutdown stops accepting (new connections are closed at once), waits until
// all held work (Conn.Hold) is released and its replies written, then closes
// every connection, waits for their Handler.Close callbacks and makes Serve
// return. If ctx ends first, connections are closed anyway and ctx.Err() is
// returned. Shutdown is idempotent and safe for concurrent use.
func (s *Server) Shutdown(ctx context.Context) error {
	first := false
	s.shutdownOnce.Do(func() {
		first = true
		s.shutdown.Store(true)
		var err error
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
	drain:
		for s.holds.Load() > 0 {
			select {
			case <-ctx.Done():
				err = ctx.Err()
				break drain
			case <-tick.C:
			}
		}
		s.closeAll(ErrServerClosed)
		if e := s.evl.Shutdown(ctx); e != nil && err == nil {
			err = e
		}
	wait:
		for s.live.Load() > 0 {
			select {
			case <-ctx.Done():
				if err == nil {
					err = ctx.Err()
				}
				break wait
			case <-tick.C:
			}
		}
		close(s.reap)
		s.reapWG.Wait()
		s.shutdownErr = err
		close(s.quit)
	})
	if first {
		return s.shutdownErr
	}
	select {
	case <-s.quit:
		return s.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		ActiveLine: s.activeLine.Load(),
		ActiveHTTP: s.activeHTTP.Load(),
		Accepted:   s.accepted.Load(),
		BytesIn:    s.bytesIn.Load(),
		BytesOut:   s.bytesOut.Load(),
		Frames:     s.frames.Load(),
		Oversize:   s.oversize.Load(),
		Refused:    s.refused.Load(),
		Hibernated: s.hibernated.Load(),
		Wakeups:    s.wakeups.Load(),
		Writes:     s.writes.Load(),
		Holds:      s.holds.Load(),
		Trims:      s.trims.Load(),
	}
}

// onPrepare runs in the accepting poller before the connection is registered
// for reads, so OnRequest always finds the *Conn.
func (s *Server) onPrepare(np netpoll.Connection) context.Context {
	c := &Conn{
		srv:       s,
		np:        np,
		cfg:       &s.cfg,
		fd:        np.(netpoll.Conn).Fd(),
		transport: "tcp",
		dup:       -1,
		fr:        framer{max: s.cfg.MaxFrameBytes},
	}
	c.ctx = connCtx{Context: context.Background(), c: c}
	c.lastActive.Store(s.clock.Load())
	s.accepted.Add(1)
	s.activeLine.Add(1)
	s.live.Add(1)
	s.register(c)
	_ = np.AddCloseCallback(s.onClosed)
	if s.shutdown.Load() {
		c.closeWith(ErrServerClosed)
	}
	return &c.ctx
}

// onClosed is netpoll's close callback. It runs before netpoll closes the fd,
// either on the event goroutine or on the poller: it must not block, so
// Handler.Close runs on its own goroutine.
func (s *Server) onClosed(np netpoll.Connection) error {
	fd := np.(netpoll.Conn).Fd()
	c := s.unregister(fd, np)
	if c == nil {
		return nil
	}
	c.state.Or(stateGone)
	go c.finish()
	return nil
}

// connDone is called once per connection by finish.
func (s *Server) connDone(c *Conn) {
	st := c.state.Load()
	if st&stateHTTP != 0 {
		s.activeHTTP.Add(^uint64(0))
	} else {
		s.activeLine.Add(^uint64(0))
	}
	if st&stateHibernated != 0 {
		s.hibernated.Add(^uint64(0))
	}
	s.live.Add(-1)
	s.ended.Add(1)
}

func (s *Server) register(c *Conn) {
	s.mu.Lock()
	if c.fd >= len(s.conns) {
		n := 2 * len(s.conns)
		if n < c.fd+1 {
			n = c.fd + 64
		}
		grown := make([]*Conn, n)
		copy(grown, s.conns)
		s.conns = grown
	}
	s.conns[c.fd] = c
	s.mu.Unlock()
}

func (s *Server) unregister(fd int, np netpoll.Connection) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fd < 0 || fd >= len(s.conns) {
		return nil
	}
	c := s.conns[fd]
	if c == nil || c.np != np {
		return nil
	}
	s.conns[fd] = nil
	return c
}

// snapshot appends the registered connections to dst.
func (s *Server) snapshot(dst []*Conn) []*Conn {
	s.mu.Lock()
	for _, c := range s.conns {
		if c != nil {
			dst = append(dst, c)
		}
	}
	s.mu.Unlock()
	return dst
}

func (s *Server) closeAll(err error) {
	for _, c := range s.snapshot(nil) {
		c.closeWith(err)
	}
}
