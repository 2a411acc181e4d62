package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/erlmcp/erlmcp-go/loop"
	"github.com/erlmcp/erlmcp-go/pool"
)

// BuildInfo is what the binary knows about itself (set at link time by the Makefile).
type BuildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Daemon is the erlmcp process: the MCP server with its listeners, built from Settings.
// cmd/erlmcp only parses flags and signals; everything else is here, where tests reach it.
type Daemon struct {
	st    Settings
	build BuildInfo
	log   *slog.Logger
	srv   *Server
	tcp   *loop.Server
	http  *HTTP // Streamable HTTP on the main port (nil when transports.http is off)

	started  time.Time
	wg       sync.WaitGroup
	stopOnce sync.Once
	done     chan struct{}

	// obs is metrics, health, readiness, tracing and the log file (health_daemon.go).
	obs *observability
	// sec is rate limits, memory guard, auth, signing and TLS (limits_daemon.go).
	sec *security
	// ops is the control socket, config reload and binary upgrade (control.go).
	ops operations
}

// NewDaemon builds the server from st: registries (demo tools when server.demo is on) and
// listeners (bound at Start). logOut receives the daemon's log (stderr when nil).
func NewDaemon(st Settings, build BuildInfo, logOut io.Writer) (*Daemon, error) {
	if err := st.Validate(); err != nil {
		return nil, err
	}
	if logOut == nil {
		logOut = os.Stderr
	}
	obs, err := newObservability(st, build, logOut)
	if err != nil {
		return nil, err
	}
	log := obs.log.Logger
	sec, err := newSecurity(st, log)
	if err != nil {
		return nil, err
	}
	srv := New(Config{
		Name:            st.Server.Name,
		Version:         build.Version,
		Instructions:    st.Server.Instructions,
		PageSize:        st.Server.PageSize,
		StrictLifecycle: st.Server.StrictLifecycle,
		// schema_validator.enabled: false turns schema checks off for every tool; the
		// stricter checks (reject_unknown_fields, strict_mode) follow it in limitsConfig.
		NoSchemaValidation: !st.SchemaValidator.Enabled,
		Workers: pool.WorkersConfig{
			Max:   st.Server.Workers,
			Queue: st.Server.WorkerQueue,
		},
		ClientRequestTimeout:    time.Duration(st.Server.ClientRequestTimeoutMs) * time.Millisecond,
		MaxSessions:             st.Server.MaxSessions,
		MaxSessionsPerPrincipal: st.Server.MaxSessionsPerPrincipal,
		MaxResponseBytes:        st.MessageSize.MaxResponseSize,
		Logger:                  log,
		Observer:                obs.observer(),
		Middleware:              sec.withMiddleware(obs.middleware()),
		Admit:                   sec.admit,
		ToolAccess:              sec.lim.toolAccess(),
	})
	conformance := strings.EqualFold(st.Server.Profile, "conformance")
	if st.Server.Demo && !conformance { // the suite judges tools/list: only its fixtures
		if err := RegisterDemo(srv); err != nil {
			return nil, err
		}
	}
	if conformance {
		if err := RegisterConformance(srv); err != nil {
			return nil, err
		}
	}
	d := &Daemon{st: st, build: build, log: log, srv: srv, obs: obs, sec: sec, done: make(chan struct{})}
	obs.addChecks(d)
	if err := d.buildCluster(); err != nil { // cluster.enabled: cluster_daemon.go
		return nil, err
	}
	if st.Transports.HTTP.Enabled {
		hc := st.httpConfig(st.Transports.TCP.Addr)
		hc.Limits = sec.lim
		d.http = srv.NewHTTP(hc)
	}
	return d, nil
}

// NewLogger returns the daemon's slog logger for the logging settings.
func NewLogger(w io.Writer, ls LoggingSettings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLogLevel(ls.Level)}
	if strings.EqualFold(ls.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseLogLevel maps the seed's level names (debug|info|warning|error) to slog levels.
func ParseLogLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warning", "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Server returns the MCP server, for registering more tools before Start.
func (d *Daemon) Server() *Server { return d.srv }

// LineConfig returns the loop configuration of line transports from the settings.
func (d *Daemon) LineConfig() loop.Config {
	t := d.st.Transports.TCP
	hib := time.Duration(d.st.Hibernation.AfterMs) * time.Millisecond
	if !d.st.Hibernation.Enabled {
		hib = -1
	}
	return loop.Config{
		Addr:           t.Addr,
		Pollers:        d.st.Server.Pollers,
		MaxFrameBytes:  d.st.MessageSize.MaxRequestSize,
		ReadTimeout:    msOrNever(t.ReadTimeoutMs),
		WriteTimeout:   msOrNever(t.WriteTimeoutMs),
		IdleTimeout:    msOrNever(t.IdleTimeoutMs),
		KeepAlive:      time.Duration(t.KeepaliveMs) * time.Millisecond,
		HibernateAfter: hib,
		Handler:        d.sec.lineHandler(d.srv),
		Admit:          d.sec.loopAdmit(),
		HTTP:           d.httpHook(),
		Logger:         d.log,
	}
}

// msOrNever turns a millisecond setting into a duration; 0 means "never" (-1 for loop).
func msOrNever(ms int) time.Duration {
	if ms == 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// Start binds the listeners and serves in the background.
func (d *Daemon) Start() error {
	d.started = time.Now()
	d.applyDisabledTools(d.st.Server.DisabledTools)
	d.startCluster() // before the listeners: the registry is read before the first request
	if d.st.Transports.TCP.Enabled {
		ln, err := d.listenLine() // the socket handed over at an upgrade, else bound (upgrade.go)
		if err != nil {
			return fmt.Errorf("transports.tcp: listening on %s: %w", d.st.Transports.TCP.Addr, err)
		}
		d.tcp = ln
		if c := d.srv.Cluster(); c != nil {
			c.SetAddr(ln.Addr().String()) // the registry shows the bound address
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := ln.Serve(); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("tcp listener stopped", "err", err)
				d.obs.tcpDown.Store(true)
			}
		}()
		d.log.Info("listening", "transport", "tcp", "addr", ln.Addr().String())
	}
	if err := d.startObservability(); err != nil {
		return err
	}
	if err := d.startSecurity(); err != nil {
		return err
	}
	d.log.Info("erlmcp started", "version", d.build.Version, "profile", d.st.Server.Profile,
		"tools", d.srv.tools.len(), "resources", d.srv.resources.len(), "prompts", d.srv.prompts.len())
	return nil
}

// TCPAddr returns the bound address of the TCP listener, or nil.
func (d *Daemon) TCPAddr() net.Addr {
	if d.tcp == nil {
		return nil
	}
	return d.tcp.Addr()
}

// Done is closed when the daemon has stopped.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Shutdown drains and stops: listeners stop accepting, in-flight work finishes (bounded by
// ctx), connections close. Idempotent.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var err error
	d.stopOnce.Do(func() {
		d.obs.ready.Set(ReasonDraining, true)
		d.log.Info("shutting down: draining in-flight work")
		if d.http != nil {
			d.http.Close() // ends SSE streams, which would otherwise hold connections open
		}
		if d.tcp != nil {
			err = errors.Join(err, d.tcp.Shutdown(ctx))
		}
		err = errors.Join(err, d.stopSecurity(ctx))
		err = errors.Join(err, d.srv.Shutdown(ctx))
		err = errors.Join(err, d.stopCluster(ctx))
		d.wg.Wait()
		err = errors.Join(err, d.stopObservability(ctx))
		d.log.Info("stopped", "uptime", time.Since(d.started).Round(time.Millisecond).String())
		close(d.done)
	})
	return err
}

// ShutdownTimeout is server.shutdown_timeout_ms as a duration.
func (d *Daemon) ShutdownTimeout() time.Duration {
	return time.Duration(d.st.Server.ShutdownTimeoutMs) * time.Millisecond
}

// ServeStdio serves one session over r/w (erlmcp stdio): newline-delimited JSON-RPC, only
// MCP messages on w. It returns when r ends (EOF) and the replies in flight are written.
func (s *Server) ServeStdio(ctx context.Context, r io.Reader, w io.Writer, maxFrame int) error {
	cfg := loop.Config{MaxFrameBytes: maxFrame, Handler: s.LineHandler(), Logger: s.log}
	err := loop.ServeStream(ctx, cfg, "stdio", r, w)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(err, s.Shutdown(sctx))
}
