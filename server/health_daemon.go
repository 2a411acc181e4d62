package server

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
)

// observability is the Daemon's metrics, health, readiness, tracing and log. It lives
// apart from daemon.go so that the daemon only names it at a few points (NewDaemon,
// Start, Shutdown).
type observability struct {
	st      ObservabilitySettings
	log     *DaemonLog
	metrics *Metrics // nil when observability.metrics.enabled is false
	tracing *Tracing // nil when tracing is off
	health  *Health
	ready   Readiness

	memGuard atomic.Int64 // memory guard state, also shown when metrics are off
	tcpDown  atomic.Bool  // the TCP listener's Serve returned an error

	// Bound addresses as text, set once by startObservability (health must not allocate).
	tcpAddr, metricsAddr string
}

// newObservability opens the log (file or logOut) and builds metrics and tracing from st.
func newObservability(st Settings, build BuildInfo, logOut io.Writer) (*observability, error) {
	dl, err := NewDaemonLog(logOut, st.Logging)
	if err != nil {
		return nil, err
	}
	o := &observability{st: st.Observability, log: dl}
	o.ready.Set(ReasonStarting, true)
	o.health = NewHealth(build.Version, &o.ready)
	if st.Observability.Metrics.Enabled {
		o.metrics = NewMetrics(build.Version)
	}
	if t := st.Observability.Tracing; t.Enabled {
		if t.Endpoint != "" && endpointPortIsGRPC(t.Endpoint) {
			dl.Logger.Warn("observability.tracing.endpoint names port 4317, OTLP's gRPC port; erlmcp exports OTLP over HTTP (protobuf), usually port 4318",
				"endpoint", t.Endpoint)
		}
		// Export failures (collector down) go to the daemon's log, not to the standard
		// library's logger; the batcher retries at most once per batch, so they are few.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			dl.Logger.Warn("tracing: exporting spans failed", "err", err)
		}))
		o.tracing, err = NewTracing(TracingConfig{Endpoint: t.Endpoint, SampleRatio: t.SampleRatio, ServiceVersion: build.Version})
		if err != nil {
			dl.Close()
			return nil, err
		}
	}
	return o, nil
}

// observer returns the Config.Observer: the metrics, or nil (not a typed nil) when off.
func (o *observability) observer() Observer {
	if o.metrics == nil {
		return nil
	}
	return o.metrics
}

// middleware returns the middleware observability installs (outermost first): the
// tracing span when tracing is on, nothing otherwise.
func (o *observability) middleware() []Middleware {
	if o.tracing == nil {
		return nil
	}
	return []Middleware{o.tracing.Middleware()}
}

// addChecks registers the built-in health checks of d and counts the limits' refusals at
// the HTTP edge (they never reach the Observer). Called by NewDaemon, before serving.
func (o *observability) addChecks(d *Daemon) {
	if m := o.metrics; m != nil && d.sec != nil && d.sec.lim != nil {
		d.sec.lim.OnHTTPRateLimited(func() { m.AddRateLimited(1) })
	}
	h := o.health
	h.AddCheck("transport", d.checkTransport)
	h.AddCheck("session", d.checkSession)
	h.AddCheck("registry", d.checkRegistry)
	h.AddCheck("workers", d.checkWorkers)
	h.AddCheck("memory", o.checkMemory)
}

// start binds the metrics listener, points metrics at the live state and clears
// ReasonStarting. Called at the end of Daemon.Start.
func (d *Daemon) startObservability() error {
	o := d.obs
	for path, h := range d.HealthRoutes() { // nil when observability.health.enabled is off
		d.HandleHTTP(path, h)
	}
	if m := o.metrics; m != nil {
		m.Precreate(d.servedTransports()...)
		m.WatchServer(d.srv)
		if d.tcp != nil {
			m.WatchListener("tcp", d.tcp)
		}
		if err := m.Listen(o.st.Metrics.Addr, o.st.Metrics.Path, o.st.Metrics.Pprof); err != nil {
			return err
		}
		o.metricsAddr = m.Addr().String()
		d.log.Info("listening", "transport", "metrics", "addr", o.metricsAddr, "path", o.st.Metrics.Path, "pprof", o.st.Metrics.Pprof)
	}
	if d.tcp != nil {
		o.tcpAddr = d.tcp.Addr().String()
	}
	if o.tracing != nil {
		d.log.Info("tracing on", "endpoint", o.st.Tracing.Endpoint, "sample_ratio", o.st.Tracing.SampleRatio)
	}
	o.ready.Set(ReasonStarting, false)
	return nil
}

// servedTransports are the transport labels the daemon's requests can carry: tcp (lines on
// the main port), tls (lines on the TLS port) and http (Streamable HTTP and legacy SSE,
// sniffed on either port). stdio (`erlmcp stdio`) starts no metrics listener.
func (d *Daemon) servedTransports() []string {
	tr := d.st.Transports
	var out []string
	if tr.TCP.Enabled {
		out = append(out, "tcp")
	}
	if tr.TLS.Enabled {
		out = append(out, "tls")
	}
	if tr.HTTP.Enabled && (tr.TCP.Enabled || tr.TLS.Enabled) {
		out = append(out, "http")
	}
	return out
}

// stopObservability stops the metrics listener and flushes spans. Called by Shutdown
// after the transports have drained, so the last requests are still counted and traced.
func (d *Daemon) stopObservability(ctx context.Context) error {
	var err error
	if d.obs.metrics != nil {
		err = errors.Join(err, d.obs.metrics.Shutdown(ctx))
	}
	if d.obs.tracing != nil {
		// The exporter retries an unreachable collector until its context ends: bound the
		// final flush so a collector that is down cannot hold up the stop.
		tctx, cancel := context.WithTimeout(ctx, tracingFlushTimeout)
		err = errors.Join(err, d.obs.tracing.Shutdown(tctx))
		cancel()
	}
	return err
}

// tracingFlushTimeout bounds the flush of queued spans at shutdown.
const tracingFlushTimeout = 5 * time.Second

// Health returns the daemon's health endpoints; subsystems add their checks with
// Health().AddCheck and the HTTP transport mounts HealthRoutes.
func (d *Daemon) Health() *Health { return d.obs.health }

// HealthRoutes returns the health endpoints by path (/health, /health/transport,
// /health/session, /health/registry, /health/workers, /health/memory, /ready, /live,
// /api/ping) for the main HTTP port, or nil when observability.health.enabled is false.
// Start mounts them. /api/ping is rate-limited per client IP (rate_limiter, seed 5.3:
// 1000 answers then 429); the probes (/health*, /ready, /live) never are, so a load
// balancer polling often cannot take the node out of rotation by itself.
func (d *Daemon) HealthRoutes() map[string]fasthttp.RequestHandler {
	if !d.obs.st.Health.Enabled {
		return nil
	}
	routes := d.obs.health.Routes()
	if d.sec != nil {
		routes[PathPing] = d.sec.lim.HTTPRateLimit(routes[PathPing])
	}
	return routes
}

// Readiness returns the flags behind /ready. Set(ReasonX, true) makes the node not ready
// (load balancers stop sending work) until Set(ReasonX, false).
func (d *Daemon) Readiness() *Readiness { return &d.obs.ready }

// Metrics returns the daemon's metrics, or nil when observability.metrics.enabled is false.
func (d *Daemon) Metrics() *Metrics { return d.obs.metrics }

// MetricsAddr returns the bound address of the metrics listener, or nil.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.obs.metrics == nil {
		return nil
	}
	return d.obs.metrics.Addr()
}

// SetMemoryGuardState is how the memory guard reports its state: 0 normal, 1 soft limit,
// 2 hard limit (refusing new work). It sets erlmcp_memory_guard_state, the memory
// health check (degraded above 0) and readiness (not ready at 2).
func (d *Daemon) SetMemoryGuardState(state int) {
	d.obs.memGuard.Store(int64(state))
	if d.obs.metrics != nil {
		d.obs.metrics.SetMemoryGuardState(state)
	}
	d.obs.ready.Set(ReasonMemoryGuard, state >= 2)
}

// ReopenLog reopens the log file at its path, after logrotate moved it away (SIGHUP and
// `erlmcp reopen_log` call it). It returns ErrNoLogFile when logging to stderr.
func (d *Daemon) ReopenLog() error {
	if err := d.obs.log.Reopen(); err != nil {
		return err
	}
	d.log.Info("log file reopened", "path", d.obs.log.File().Path())
	return nil
}

// SetLogLevel changes the daemon's log level live (debug|info|warning|error), e.g. on
// `erlmcp reload`.
func (d *Daemon) SetLogLevel(level string) { d.obs.log.SetLevel(level) }

func (d *Daemon) checkTransport() CheckResult {
	t := d.st.Transports.TCP
	if !t.Enabled {
		return Healthy().AddText("tcp", "disabled")
	}
	ln := d.tcp
	if ln == nil {
		return Unhealthy("tcp listener not started").AddText("tcp_addr", t.Addr)
	}
	st := ln.Stats()
	r := Healthy()
	switch {
	case d.obs.tcpDown.Load():
		r = Unhealthy("tcp listener stopped serving")
	case d.obs.ready.Reasons()&ReasonDraining != 0:
		r = Degraded("draining")
	}
	r = r.AddText("tcp_addr", d.obs.tcpAddr).
		Add("connections_tcp", float64(st.ActiveLine)).
		Add("connections_http", float64(st.ActiveHTTP)).
		Add("accepted_total", float64(st.Accepted))
	if d.obs.metricsAddr != "" {
		r = r.AddText("metrics_addr", d.obs.metricsAddr)
	}
	return r
}

func (d *Daemon) checkSession() CheckResult {
	st := d.srv.Stats()
	return Healthy().
		Add("sessions", float64(st.Sessions)).
		Add("subscriptions", float64(st.Subscriptions)).
		Add("idle_timeout_ms", float64(d.st.Transports.TCP.IdleTimeoutMs))
}

func (d *Daemon) checkRegistry() CheckResult {
	st := d.srv.Stats()
	return Healthy().
		Add("tools", float64(st.Tools)).
		Add("resources", float64(st.Resources)).
		Add("resource_templates", float64(st.ResourceTemplates)).
		Add("prompts", float64(st.Prompts))
}

// workersDegradedShare is the share of the worker queue in use above which the workers
// check reports degraded: slow handlers are about to be refused with -32004.
const workersDegradedShare = 0.8

func (d *Daemon) checkWorkers() CheckResult {
	st := d.srv.Stats()
	maxWorkers, queue := d.st.Server.Workers, d.st.Server.WorkerQueue
	r := Healthy()
	if queue > 0 && float64(st.WorkersQueued) >= workersDegradedShare*float64(queue) {
		r = Degraded("worker queue nearly full; slow handlers will be refused")
	}
	return r.Add("running", float64(st.WorkersRunning)).
		Add("queued", float64(st.WorkersQueued)).
		Add("max", float64(maxWorkers)).
		Add("queue", float64(queue))
}

// memSamples are reused runtime/metrics samples (Read needs its own slice per call).
var memSamples = sync.Pool{New: func() any {
	return &[2]rtmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
}}

func (o *observability) checkMemory() CheckResult {
	s := memSamples.Get().(*[2]rtmetrics.Sample)
	rtmetrics.Read(s[:])
	heap, total := sampleValue(s[0]), sampleValue(s[1])
	memSamples.Put(s)
	guard := o.memGuard.Load()
	r := Healthy()
	switch {
	case guard >= 2:
		r = Degraded("memory guard at hard limit: refusing new work")
	case guard == 1:
		r = Degraded("memory guard at soft limit")
	}
	return r.Add("heap_bytes", heap).
		Add("total_bytes", total).
		Add("goroutines", float64(runtime.NumGoroutine())).
		Add("memory_guard_state", float64(guard))
}

func sampleValue(s rtmetrics.Sample) float64 {
	switch s.Value.Kind() {
	case rtmetrics.KindUint64:
		return float64(s.Value.Uint64())
	case rtmetrics.KindFloat64:
		return s.Value.Float64()
	}
	return 0
}
