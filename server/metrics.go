package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/loop"
)

// Metric names (prefix erlmcp_, as in ARCHITECTURE.md and the seed's dashboards).
const (
	metricRequests      = "erlmcp_requests_total"
	metricErrors        = "erlmcp_errors_total"
	metricLatency       = "erlmcp_latency_seconds"
	metricConnections   = "erlmcp_connections_active"
	metricSessions      = "erlmcp_sessions_active"
	metricRateLimited   = "erlmcp_rate_limited_total"
	metricMemoryGuard   = "erlmcp_memory_guard_state"
	metricBytesReceived = "erlmcp_bytes_received_total"
	metricBytesSent     = "erlmcp_bytes_sent_total"
)

// LatencyBuckets are the upper bounds (seconds) of erlmcp_latency_seconds. MCP requests
// served inline take tens of microseconds and tool calls up to seconds, so the buckets
// start at 50µs (the Prometheus defaults start at 5ms, where every inline request would
// land in the first bucket and p50/p99 would read as 5ms).
var LatencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// Label values. Method and transport labels come from fixed tables so that a client
// sending random method names cannot grow the number of series: a method the server
// does not know is counted as "other", a message with no method (undecodable frame,
// oversized line) as "none", an unknown transport as "other".
const (
	labelOther = "other"
	labelNone  = "none"
)

// metricTransports are the transport label values; anything else is "other".
var metricTransports = [...]string{"tcp", "http", "stdio", "tls", "https", labelOther}

const nTransports = len(metricTransports)

func transportIndex(t string) int {
	for i, name := range metricTransports[:nTransports-1] {
		if name == t {
			return i
		}
	}
	return nTransports - 1
}

// clientNotifications are the notifications a client sends that the server counts.
var clientNotifications = []string{
	NotificationInitialized, NotificationCancelled, NotificationProgress,
	NotificationRootsListChanged, NotificationElicitationComplete,
}

// methodSeries holds the metric pointers of one (method, transport) pair, created by
// Precreate for the pairs the daemon serves and on first use for any other.
type methodSeries struct {
	requests *vm.Counter
	latency  *vm.PrometheusHistogram
}

// Metrics records what the server does and serves it as Prometheus text. It implements
// Observer (set it as Config.Observer). All methods are safe for concurrent use.
//
// Recording a request costs two read-only lookups (method and transport tables), one
// atomic pointer load, one atomic add and one histogram update under that series' own
// mutex: nothing allocates and no lock is shared between different (method, transport)
// pairs. Errors add one more read-only map lookup (codec.Code.Name) and a sync.Map load.
//
// Gauges of live state (connections, sessions, workers, the TLS certificate's expiry) and
// the byte counters of loop listeners are computed when scraped, from the sources given to
// WatchServer, WatchListener and WatchTLS.
//
// Series exist before their first event (Prometheus' convention, so that rate() and the
// dashboards see zeros rather than nothing on a fresh node): the error counter of every
// code in codec's table at NewMetrics, the request and latency series of every method of
// the dispatch table at Precreate.
//
// erlmcp_errors_total is labelled by code *name* (codec.Code.Name: "rate_limited",
// "method_not_found", ...; "other" for codes not in codec's table): names read better on
// a dashboard than negative numbers and the set is bounded by the table.
type Metrics struct {
	set *vm.Set

	methodIdx map[string]int // read-only after NewMetrics
	methods   []string       // label value by index
	series    []atomic.Pointer[methodSeries]

	errors      sync.Map // code name → *vm.Counter
	rateLimited *vm.Counter
	memGuard    atomic.Int64

	// bytes added by transports that loop does not count (HTTP bodies), by transport.
	bytesIn, bytesOut [nTransports]atomic.Uint64

	mu        sync.Mutex // guards srv, listeners and tls (written rarely, read at scrape)
	srv       *Server
	listeners []watchedListener
	tls       *TLSListener

	httpSrv *fasthttp.Server
	ln      net.Listener
	path    string
	pprof   bool // also serve /debug/pprof/ (observability.metrics.pprof)
	done    chan struct{}
}

type watchedListener struct {
	transport int // label index of line connections
	ln        *loop.Server
}

// NewMetrics returns a Metrics with its own metrics.Set (nothing is registered in the
// process-wide default set, so several servers can live in one test binary).
// buildVersion labels erlmcp_build_info.
func NewMetrics(buildVersion string) *Metrics {
	m := &Metrics{set: vm.NewSet(), methodIdx: map[string]int{}, path: "/metrics"}
	add := func(name string) {
		if _, ok := m.methodIdx[name]; !ok {
			m.methodIdx[name] = len(m.methods)
			m.methods = append(m.methods, name)
		}
	}
	for name := range methods {
		add(name)
	}
	for _, name := range clientNotifications {
		add(name)
	}
	m.methodIdx[""] = len(m.methods)
	m.methods = append(m.methods, labelNone)
	m.methods = append(m.methods, labelOther) // index len-1: unknown methods
	m.series = make([]atomic.Pointer[methodSeries], len(m.methods)*nTransports)

	m.rateLimited = m.set.NewCounter(metricRateLimited)
	m.set.NewGauge(metricMemoryGuard, func() float64 { return float64(m.memGuard.Load()) })
	m.set.NewGauge(`erlmcp_build_info{version=`+strconv.Quote(buildVersion)+`}`, func() float64 { return 1 })
	// Pre-create the error counter of every known code so that rate() works from the
	// first error on (a series that appears at its first increment loses that increment).
	for c := codec.Code(-32700); c <= -32000; c++ {
		if name := c.Name(); name != labelOther {
			m.errorCounter(name)
		}
	}
	m.set.RegisterMetricsWriter(m.writeLive)
	return m
}

// Set returns the underlying metrics.Set, for subsystems that add their own erlmcp_*
// metrics (limits, cluster). Names must be unique within it.
func (m *Metrics) Set() *vm.Set { return m.set }

// RequestDone implements Observer.
func (m *Metrics) RequestDone(transport, method string, code codec.Code, elapsed time.Duration) {
	s := m.seriesFor(method, transport)
	s.requests.Inc()
	s.latency.Update(elapsed.Seconds())
	if code != 0 {
		m.errorCounter(code.Name()).Inc()
		if code == codec.CodeRateLimited {
			m.rateLimited.Inc()
		}
	}
}

// Precreate makes the request counter and latency histogram of every method in the
// dispatch table exist, at zero, for each of transports (the daemon passes the ones it
// serves: tcp, http, tls). A fresh node then answers the seed's
// `curl :9090/metrics | grep -E "erlmcp_(requests|errors|latency)_"` with every series,
// and rate() over a series counts its first request (a series born at its first increment
// loses it).
//
// Cardinality: each (method, transport) pair is 22 series (1 counter, and 18 buckets,
// +Inf, _sum and _count of the histogram); the 17 methods of the dispatch table make 374
// series per transport, 748 for the default daemon (tcp and http). Client notifications,
// "none" and "other" are still created on first use. The request path does not change:
// RequestDone finds the same pointer it would have created. Safe to call more than once
// and concurrently with RequestDone.
func (m *Metrics) Precreate(transports ...string) {
	for _, t := range transports {
		for name := range methods {
			m.seriesFor(name, t)
		}
	}
}

// seriesFor returns the series of (method, transport), creating it on first use.
func (m *Metrics) seriesFor(method, transport string) *methodSeries {
	mi, ok := m.methodIdx[method]
	if !ok {
		mi = len(m.methods) - 1
	}
	ti := transportIndex(transport)
	slot := &m.series[mi*nTransports+ti]
	if s := slot.Load(); s != nil {
		return s
	}
	// First request of this pair: GetOrCreate is idempotent, so racing creators end up
	// with the same pointers.
	labels := `{method="` + m.methods[mi] + `",transport="` + metricTransports[ti] + `"}`
	s := &methodSeries{
		requests: m.set.GetOrCreateCounter(metricRequests + labels),
		latency:  m.set.GetOrCreatePrometheusHistogramExt(metricLatency+labels, LatencyBuckets),
	}
	if !slot.CompareAndSwap(nil, s) {
		return slot.Load()
	}
	return s
}

func (m *Metrics) errorCounter(name string) *vm.Counter {
	if c, ok := m.errors.Load(name); ok {
		return c.(*vm.Counter)
	}
	c := m.set.GetOrCreateCounter(metricErrors + `{code="` + name + `"}`)
	m.errors.Store(name, c)
	return c
}

// AddRateLimited counts refusals by a rate limiter that never reached the server as a
// request (an HTTP 429 before the body was decoded, a connection refused at accept).
// Requests answered with codec.CodeRateLimited are already counted by RequestDone: do not
// count them again here.
func (m *Metrics) AddRateLimited(n int) { m.rateLimited.Add(n) }

// SetMemoryGuardState sets erlmcp_memory_guard_state: 0 normal, 1 soft limit (shedding
// low-priority work), 2 hard limit (refusing new work). The memory guard calls it on
// every state change.
func (m *Metrics) SetMemoryGuardState(state int) { m.memGuard.Store(int64(state)) }

// MemoryGuardState returns what SetMemoryGuardState last set.
func (m *Metrics) MemoryGuardState() int { return int(m.memGuard.Load()) }

// AddBytes counts payload bytes moved by a transport that loop does not count itself
// (HTTP request and response bodies). Line transports served by a watched loop listener
// are counted from its Stats and need no call.
// CountConn wraps c so that every byte read and written is added to
// erlmcp_bytes_{received,sent}_total for transport.
func (m *Metrics) CountConn(c net.Conn, transport string) net.Conn {
	ti := transportIndex(transport)
	return &countedConn{Conn: c, in: &m.bytesIn[ti], out: &m.bytesOut[ti]}
}

// countedConn counts the bytes that pass through a net.Conn.
type countedConn struct {
	net.Conn
	in, out *atomic.Uint64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.in.Add(uint64(n))
	}
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.out.Add(uint64(n))
	}
	return n, err
}

func (m *Metrics) AddBytes(transport string, received, sent int) {
	ti := transportIndex(transport)
	if received > 0 {
		m.bytesIn[ti].Add(uint64(received))
	}
	if sent > 0 {
		m.bytesOut[ti].Add(uint64(sent))
	}
}

// WatchServer makes the scrape report s's sessions and workers.
func (m *Metrics) WatchServer(s *Server) {
	m.mu.Lock()
	m.srv = s
	m.mu.Unlock()
}

// WatchListener makes the scrape report ln's connections and bytes: line-protocol
// connections under the label transport, connections handed to its HTTP server under
// "http".
func (m *Metrics) WatchListener(transport string, ln *loop.Server) {
	m.mu.Lock()
	m.listeners = append(m.listeners, watchedListener{transportIndex(transport), ln})
	m.mu.Unlock()
}

// WatchTLS makes the scrape report t's connections (erlmcp_connections_active{transport="tls"},
// lines and HTTP over TLS alike) and the expiry of the certificate new handshakes use, as
// erlmcp_tls_certificate_expiry_timestamp_seconds (Unix seconds of its NotAfter; it follows
// TLSListener.Reload). Alert on it minus time() (deploy/prometheus/erlmcp-rules.yml).
func (m *Metrics) WatchTLS(t *TLSListener) {
	m.mu.Lock()
	m.tls = t
	m.mu.Unlock()
}

// metricTLSExpiry is the NotAfter of the TLS listener's certificate.
const metricTLSExpiry = "erlmcp_tls_certificate_expiry_timestamp_seconds"

// writeLive writes the gauges and counters read from live state at scrape time.
func (m *Metrics) writeLive(w io.Writer) {
	var conns, in, out [nTransports]uint64
	m.mu.Lock()
	srv := m.srv
	lns := m.listeners
	tl := m.tls
	m.mu.Unlock()
	if tl != nil {
		conns[transportIndex("tls")] += uint64(tl.Conns())
		vm.WriteGaugeUint64(w, metricTLSExpiry, uint64(max(tl.NotAfter().Unix(), 0)))
	}
	httpIdx := transportIndex("http")
	for _, l := range lns {
		st := l.ln.Stats()
		conns[l.transport] += st.ActiveLine
		conns[httpIdx] += st.ActiveHTTP
		in[l.transport] += st.BytesIn
		out[l.transport] += st.BytesOut
	}
	for i := range nTransports {
		in[i] += m.bytesIn[i].Load()
		out[i] += m.bytesOut[i].Load()
	}
	// Every transport is written (zeros included) so dashboards show flat lines rather
	// than gaps; "other" only when it is used. One family at a time: Prometheus wants a
	// family's samples together, after its single TYPE line.
	used := func(i int) bool {
		return metricTransports[i] != labelOther || conns[i] != 0 || in[i] != 0 || out[i] != 0
	}
	for _, fam := range []struct {
		name, typ string
		v         *[nTransports]uint64
	}{
		{metricConnections, "gauge", &conns},
		{metricBytesReceived, "counter", &in},
		{metricBytesSent, "counter", &out},
	} {
		vm.WriteMetadataIfNeeded(w, fam.name, fam.typ)
		for i, name := range metricTransports {
			if used(i) {
				fmt.Fprintf(w, "%s{transport=%q} %d\n", fam.name, name, fam.v[i])
			}
		}
	}
	if srv != nil {
		st := srv.Stats()
		vm.WriteGaugeUint64(w, metricSessions, uint64(st.Sessions))
		vm.WriteGaugeUint64(w, "erlmcp_subscriptions_active", uint64(st.Subscriptions))
		vm.WriteGaugeUint64(w, "erlmcp_workers_running", uint64(st.WorkersRunning))
		vm.WriteGaugeUint64(w, "erlmcp_workers_queued", uint64(st.WorkersQueued))
		vm.WriteGaugeUint64(w, "erlmcp_tools_registered", uint64(st.Tools))
		vm.WriteGaugeUint64(w, "erlmcp_resources_registered", uint64(st.Resources+st.ResourceTemplates))
		vm.WriteGaugeUint64(w, "erlmcp_prompts_registered", uint64(st.Prompts))
		vm.WriteGaugeUint64(w, "erlmcp_sessions_max", uint64(st.MaxSessions))
		vm.WriteCounterUint64(w, "erlmcp_sessions_refused_total", st.SessionsRefused)
	} else {
		vm.WriteGaugeUint64(w, metricSessions, 0)
		vm.WriteCounterUint64(w, "erlmcp_sessions_refused_total", 0)
	}
}

// WritePrometheus writes every metric as Prometheus text: the erlmcp_* set, then Go
// runtime (go_*) and process (process_*) metrics, open and maximum file descriptors
// included (the box's hard limit on descriptors bounds connections).
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	vm.WriteProcessMetrics(w)
	vm.WriteFDMetrics(w)
}

func init() {
	// # TYPE lines let Prometheus (and expfmt) know erlmcp_latency_seconds is a histogram
	// and *_total are counters; without them everything is "untyped".
	vm.ExposeMetadata(true)
}

// Handler returns the fasthttp handler of the metrics listener: GET path → Prometheus
// text, anything else 404.
func (m *Metrics) Handler(path string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if m.pprof && bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
			pprofhandler.PprofHandler(ctx)
			return
		}
		if string(ctx.Path()) != path {
			ctx.Error("not found; metrics are at "+path, fasthttp.StatusNotFound)
			return
		}
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
			return
		}
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		m.WritePrometheus(ctx)
	}
}

// Listen binds the metrics listener (observability.metrics.addr) and serves path on it in
// the background until Shutdown; with pprof, Go's runtime profiles at /debug/pprof/ too.
func (m *Metrics) Listen(addr, path string, pprof bool) error {
	if path == "" {
		path = "/metrics"
	}
	ln, err := listenInherited(roleMetrics, "tcp", addr) // handed over at an upgrade (upgrade.go)
	if err != nil {
		return fmt.Errorf("observability.metrics.addr: listening on %s: %w", addr, err)
	}
	m.ln, m.path, m.pprof = ln, path, pprof
	m.httpSrv = &fasthttp.Server{
		Handler:                       m.Handler(path),
		Name:                          "erlmcp-metrics",
		ReadTimeout:                   10 * time.Second,
		WriteTimeout:                  30 * time.Second,
		IdleTimeout:                   time.Minute,
		NoDefaultDate:                 true,
		DisableHeaderNamesNormalizing: true,
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		_ = m.httpSrv.Serve(ln)
	}()
	return nil
}

// Addr returns the bound address of the metrics listener, or nil before Listen.
func (m *Metrics) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// Shutdown stops the metrics listener and waits for open scrapes (bounded by ctx).
// Idempotent; a no-op when Listen was never called.
func (m *Metrics) Shutdown(ctx context.Context) error {
	if m.httpSrv == nil {
		return nil
	}
	err := m.httpSrv.ShutdownWithContext(ctx)
	select {
	case <-m.done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}
