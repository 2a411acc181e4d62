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
	// DefaultBufferSize is netpoll's initial read buffer per connection. It is
	// also what an idle connection keeps inside netpoll (netpoll never frees
	// the last node of its input buffer), so it dominates idle memory: see
	// TestIdleMemory. netpoll grows the buffer by doubling when a read fills it.
	DefaultBufferSize = 1 << 10
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
	// minimum buffer node, LinkBufferCap). If zero, DefaultBufferSize.
	// PROCESS-WIDE like Pollers: the first Listen applies it.
	BufferSize int `json:"bufferSize"`
	// Handler receives line-protocol events. Required.
	Handler Handler `json:"-"`
	// HTTP, if set, receives connections whose first bytes look like an HTTP
	// request line ("GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC",
	// "PRI "). It runs in the connection's event goroutine and owns the
	// connection until it returns (then the connection is closed); e.g.
	// fasthttp.Server.ServeConn. If nil every connection speaks lines.
	HTTP func(c net.Conn) `json:"-"`
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
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
