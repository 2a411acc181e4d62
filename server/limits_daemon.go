package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/erlmcp/erlmcp-go/loop"
)

// security is the daemon's admission and security layer: Limits (rate limits, memory guard,
// auth, signing, strict schemas) and the TLS listener.
type security struct {
	st  Settings
	log *slog.Logger
	lim *Limits
	tls *TLSListener
}

// newSecurity builds Limits from the settings, loading the secrets they name.
func newSecurity(st Settings, log *slog.Logger) (*security, error) {
	cfg, err := st.limitsConfig()
	if err != nil {
		return nil, err
	}
	cfg.Logger = log
	lim, err := NewLimits(cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &security{st: st, log: log, lim: lim}, nil
}

// limitsConfig turns the settings' limits and security sections into a LimitsConfig.
func (st *Settings) limitsConfig() (LimitsConfig, error) {
	cfg := LimitsConfig{
		RateLimit:            st.RateLimiter.config(),
		KeyBySession:         strings.EqualFold(st.RateLimiter.KeyBy, "session"),
		MemoryGuard:          st.MemoryGuard.config(),
		AuthRequired:         st.Auth.Enabled,
		Resource:             st.Auth.Resource,
		AuthorizationServers: st.Auth.AuthorizationServers,
		ToolScopes:           st.Auth.ToolScopes,
		DefaultToolScopes:    st.Auth.DefaultToolScopes,
		MTLSScopes:           st.Auth.MTLSScopes,
	}
	if st.SchemaValidator.Enabled {
		cfg.RejectUnknownFields = st.SchemaValidator.RejectUnknownFields || st.SchemaValidator.StrictMode
		cfg.StrictSchema = st.SchemaValidator.StrictMode
	}
	var err error
	if cfg.Auth, err = st.Auth.config(); err != nil {
		return cfg, err
	}
	if cfg.Signing, err = st.RequestSigning.config(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// withMiddleware returns mw followed by the limits middleware (innermost, so tracing and
// metrics see refusals). The daemon also sets Config.Admit to sec.admit, which runs the
// cheap checks before params are decoded; the middleware then checks scopes and schemas.
func (sec *security) withMiddleware(mw []Middleware) []Middleware {
	out := make([]Middleware, 0, len(mw)+1)
	out = append(out, mw...)
	return append(out, sec.lim.middleware(false))
}

// admit is Config.Admit.
func (sec *security) admit(r *Request) error { return sec.lim.Admit(r) }

// startSecurity reports the memory guard to health and metrics and starts the TLS listener
// when a certificate is configured.
func (d *Daemon) startSecurity() error {
	sec := d.sec
	if g := sec.lim.MemoryGuard(); g != nil {
		// The health layer (health_daemon.go) turns the state into /ready, the memory health
		// check and erlmcp_memory_guard_state; 2 means "refusing new work".
		hr, _ := any(d).(interface{ SetMemoryGuardState(int) })
		report := func(s limits.MemoryState) {
			if hr == nil {
				return
			}
			if s == limits.MemoryOverloaded {
				hr.SetMemoryGuardState(2)
			} else {
				hr.SetMemoryGuardState(0)
			}
		}
		g.OnChange(func(_, nw limits.MemoryState) { report(nw) })
		report(g.State())
		limit, high, low := g.Limit()
		d.log.Info("memory guard on", "limit_bytes", limit, "high_water_bytes", high, "low_water_bytes", low)
	}
	tl := sec.st.Transports.TLS
	if !tl.Enabled {
		return nil
	}
	cfg := tl.tlsConfig()
	cfg.Line = d.LineConfig()
	cfg.Line.Addr, cfg.Line.Listener = "", nil
	cfg.MTLSScopes = sec.st.Auth.MTLSScopes
	cfg.Admit = sec.lim.AdmitConn
	cfg.Logger = d.log
	ln, err := ListenTLS(cfg)
	if err != nil {
		return err
	}
	sec.tls = ln
	if m := d.obs.metrics; m != nil {
		m.WatchTLS(ln) // connections and erlmcp_tls_certificate_expiry_timestamp_seconds
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := ln.Serve(); err != nil && !errors.Is(err, net.ErrClosed) {
			d.log.Error("tls listener stopped", "err", err)
		}
	}()
	d.log.Info("listening", "transport", "tls", "addr", ln.Addr().String(), "mtls", tl.Verify == "verify_peer")
	return nil
}

// stopSecurity closes the TLS listener and its connections, then the limits' goroutines.
func (d *Daemon) stopSecurity(ctx context.Context) error {
	var err error
	if d.sec.tls != nil {
		err = d.sec.tls.Shutdown(ctx)
	}
	d.sec.lim.Close()
	return err
}

// Limits returns the daemon's admission and security layer (rate limiter, memory guard,
// authenticator, signature verifier) for the HTTP and health layers.
func (d *Daemon) Limits() *Limits { return d.sec.lim }

// TLSAddr returns the bound address of the TLS listener, or nil.
func (d *Daemon) TLSAddr() net.Addr {
	if d.sec.tls == nil {
		return nil
	}
	return d.sec.tls.Addr()
}

// ReloadTLS re-reads the TLS certificate, key and CA bundle (`erlmcp reload`). It returns
// nil when TLS is off.
func (d *Daemon) ReloadTLS() error {
	if d.sec.tls == nil {
		return nil
	}
	return d.sec.tls.Reload()
}

// reloadLimits applies the rate limiter's quotas and the memory guard's limit and water
// marks of next to the running limits (`erlmcp reload`, nginx-style: no restart, no
// dropped connection). Buckets are kept, so a client's current window counts against the
// new quota. Turning either on or off, key_by and the sampling intervals need a restart
// (Reload reports those keys as such). Nothing is applied when a value is refused.
func (d *Daemon) reloadLimits(cur, next Settings) error {
	if rl := d.sec.lim.RateLimiter(); rl != nil && next.RateLimiter.Enabled {
		if err := rl.SetLimits(*next.RateLimiter.config()); err != nil {
			return fmt.Errorf("config: rate_limiter: %w", err)
		}
	}
	g := d.sec.lim.MemoryGuard()
	if g == nil || !next.MemoryGuard.Enabled {
		return nil
	}
	if next.MemoryGuard.HighWater != cur.MemoryGuard.HighWater || next.MemoryGuard.LowWater != cur.MemoryGuard.LowWater {
		if err := g.SetWater(next.MemoryGuard.HighWater, next.MemoryGuard.LowWater); err != nil {
			return fmt.Errorf("config: memory_guard.high_water/low_water: %w", err)
		}
	}
	if n := next.MemoryGuard.MemoryLimitBytes; n != cur.MemoryGuard.MemoryLimitBytes {
		if n == 0 {
			total, _, err := limits.DetectMemory()
			if err != nil {
				return fmt.Errorf("config: memory_guard.memory_limit_bytes: %w", err)
			}
			n = int64(float64(total) * limits.DefaultMemoryFraction)
		}
		if err := g.SetLimit(n); err != nil {
			return fmt.Errorf("config: memory_guard.memory_limit_bytes: %w", err)
		}
	}
	return nil
}

// lineHandler wraps the line protocol's handler so that the memory guard's refusals reach
// the sender: a connection opened while the guard refuses new work gets one -32004 error
// line and is closed, before any session exists for it (the issue's "refuses new
// connections"), and a line that loop stops buffering because the guard refused its growth
// (loop.Config.Admit, see loopAdmit) is answered with -32004 on a connection that stays
// open. HTTP connections are sniffed before Open and are refused per request at the HTTP
// edge (Limits.httpEdge) instead.
func (sec *security) lineHandler(s *Server) loop.Handler {
	h := s.LineHandler()
	if sec.lim.MemoryGuard() == nil {
		return h
	}
	return admitConnHandler{Handler: h, lim: sec.lim, s: s}
}

// loopAdmit is loop.Config.Admit: the memory guard's state (one atomic load), nil when the
// guard is off. loop asks it when a line connection opens and each time a connection's
// unfinished line grows past loop.AdmitAbove, so a flood of huge messages stops being
// buffered within one guard sample of the high-water mark instead of each connection
// holding up to max_request_size.
func (sec *security) loopAdmit() func() bool {
	if sec.lim.MemoryGuard() == nil {
		return nil
	}
	return sec.lim.AdmitConn
}

// admitConnHandler answers the memory guard's refusals on line connections.
type admitConnHandler struct {
	loop.Handler
	lim *Limits
	s   *Server
}

// Open refuses the connection when the guard turned overloaded after loop admitted it (or
// when loop.Config.Admit is not set, as for ServeStream).
func (h admitConnHandler) Open(c *loop.Conn) {
	if !h.lim.AdmitConn() {
		_ = c.Send(codec.AppendError(nil, codec.NullID, h.lim.OverloadedError()))
		_ = c.Close()
		return // no session: Frame and Close ignore the connection
	}
	h.Handler.Open(c)
}

// Overloaded implements loop.OverloadHandler: -32004 with data.retryAfterMs, with a null
// id since the line was not read to its end, counted by the observer like any error reply.
// At Open time loop then closes the connection; for a dropped line it stays open.
func (h admitConnHandler) Overloaded(c *loop.Conn) {
	h.s.ReplyError(c, h.lim.OverloadedError(), c.Transport())
}
