package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultMaxFrameBytes  = 10 << 20
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultHibernateAfter = time.Second
	DefaultKeepAlive      = 15 * time.Second
	// DefaultBufferSize is netpoll's read buffer per connection when
	// hibernation is on. It is deliberately above netpoll's 8 KiB page: only
	// then does netpoll's Reader.Release drop the drained tail node of the
	// input buffer (LinkBuffer.resetTail), so a connection holds a read buffer
	// only while bytes are being processed (the buffer comes from and goes
	// back to netpoll's size-class pool at each wakeup) and an idle
	// connection keeps none: TestIdleMemory measured 4.4 KB of heap per idle
	// connection at 1 KiB, 3.8 KB at 512 B and 3.3 KB at 16 KiB. Each read
	// also takes up to 16 KiB at once, which helps pipelined clients.
	DefaultBufferSize = 16 << 10
	// DefaultBufferSizeNoHibernation is the default when hibernation is off
	// (HibernateAfter < 0): a small buffer that each connection keeps for its
	// whole life (netpoll never frees the last node of a buffer of at most
	// 8 KiB), so a wakeup takes nothing from a pool.
	DefaultBufferSizeNoHibernation = 1 << 10
)

// Config configures a Server (listener) or ServeStream. The zero value of every
// field means its documented default. Listen and ServeStream copy the Config.
type Config struct {
	// Network is the listener network. If empty, "tcp".
	Network string `json:"network"`
	// Addr is the address to bind, e.g. "127.0.0.1:8080". Ignored when
	// Listener is set.
	Addr string `json:"addr"`
	// Listener is an optional pre-opened listener (socket handoff on upgrade),
	// a *net.TCPListener or *net.UnixListener. Its socket is dup'ed for
	// netpoll (as netpoll.ConvertListener does) and both are closed by Shutdown.
	Listener net.Listener `json:"-"`
	// Pollers is netpoll's poller (epoll loop) count. If zero, netpoll's
	// default (GOMAXPROCS/20+1). PROCESS-WIDE: netpoll keeps one set of
	// pollers per process; the first Listen applies it and later different
	// values are ignored (logged).
	Pollers int `json:"pollers"`
	// MaxFrameBytes is the maximum line length (bytes before '\n'). If zero,
	// DefaultMaxFrameBytes (10 MiB). Longer lines are reported with
	// Handler.Oversize and skipped.
	MaxFrameBytes int `json:"maxFrameBytes"`
	// ReadTimeout is the longest time from the first byte of a frame to its
	// newline (slowloris guard); the connection is closed past it. If zero,
	// DefaultReadTimeout; negative disables it.
	ReadTimeout time.Duration `json:"readTimeout"`
	// WriteTimeout is how long a write may wait for a slow reader before the
	// connection is closed. If zero, DefaultWriteTimeout.
	WriteTimeout time.Duration `json:"writeTimeout"`
	// IdleTimeout closes a connection with no traffic and no held work for
	// this long. If zero, DefaultIdleTimeout; negative never.
	IdleTimeout time.Duration `json:"idleTimeout"`
	// HibernateAfter releases a connection's pooled buffers after this much
	// idleness. If zero, DefaultHibernateAfter; negative never.
	HibernateAfter time.Duration `json:"hibernateAfter"`
	// KeepAlive is the TCP keepalive period. If zero, DefaultKeepAlive;
	// negative leaves the OS default.
	KeepAlive time.Duration `json:"keepAlive"`
	// BufferSize is netpoll's initial read buffer per connection (and its
	// minimum buffer node, LinkBufferCap, when below 4 KiB). If zero,
	// DefaultBufferSize, or DefaultBufferSizeNoHibernation when HibernateAfter
	// is negative. Above 8 KiB netpoll releases the buffer whenever it is
	// drained (idle connections keep none); at 8 KiB or less every
	// connection keeps one for life. PROCESS-WIDE like Pollers: the first
	// Listen applies it.
	BufferSize int `json:"bufferSize"`
	// Handler receives line-protocol events. Required.
	Handler Handler `json:"-"`
	// HTTP, if set, receives connections whose first bytes look like an HTTP
	// request line ("GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC",
	// "PRI "). It runs in the connection's event goroutine and owns the
	// connection until it returns (then the connection is closed); e.g.
	// fasthttp.Server.ServeConn. If nil every connection speaks lines. The
	// conn's read deadlines are enforced by the reaper, within one tick (at
	// most a second): a Read waiting past its deadline has its connection
	// closed and returns ErrHTTPTimeout (httpconn.go).
	HTTP func(c net.Conn) `json:"-"`
	// Admit, if set, says whether the process can take more memory (e.g. a memory
	// guard's one atomic load; it must be cheap and safe for concurrent use). It is
	// consulted when a line-protocol connection opens (a refused one is answered
	// through OverloadHandler and closed) and each time a connection's unfinished
	// line grows past AdmitAbove (a refused line is dropped and its rest skipped like
	// an oversize line, the connection stays open). See admit.go. If nil, everything
	// is admitted.
	Admit func() bool `json:"-"`
	// Logger receives warnings (write failures, dup failures). If nil, logs
	// are discarded.
	Logger *slog.Logger `json:"-"`
}

// ErrNoHandler is returned by Config.Validate when Handler is nil.
var ErrNoHandler = errors.New("loop: Config.Handler is required")

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.Handler == nil {
		return ErrNoHandler
	}
	if c.MaxFrameBytes < 0 {
		return fmt.Errorf("loop: Config.MaxFrameBytes must be >= 0, got %d", c.MaxFrameBytes)
	}
	if c.BufferSize < 0 {
		return fmt.Errorf("loop: Config.BufferSize must be >= 0, got %d", c.BufferSize)
	}
	if c.Pollers < 0 {
		return fmt.Errorf("loop: Config.Pollers must be >= 0, got %d", c.Pollers)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("loop: Config.WriteTimeout must be >= 0, got %v", c.WriteTimeout)
	}
	return nil
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Network == "" {
		c.Network = "tcp"
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HibernateAfter == 0 {
		c.HibernateAfter = DefaultHibernateAfter
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
		if c.HibernateAfter < 0 {
			c.BufferSize = DefaultBufferSizeNoHibernation
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
