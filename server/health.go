package server

import (
	"github.com/erlmcp/erlmcp-go/codec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Status is the outcome of a health check.
type Status uint8

// Health statuses, from best to worst. The overall status is the worst of the checks'.
const (
	// StatusHealthy: the subsystem works as configured.
	StatusHealthy Status = iota
	// StatusDegraded: it works, with reduced capacity (memory guard on, worker queue
	// filling up). /health still answers 200 so load balancers keep the node.
	StatusDegraded
	// StatusUnhealthy: it does not work (a listener stopped). /health answers 503.
	StatusUnhealthy
)

var statusNames = [...]string{"healthy", "degraded", "unhealthy"}

// String returns "healthy", "degraded" or "unhealthy".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unhealthy"
}

// maxFigures bounds the figures of one check; more are dropped. A fixed array keeps
// CheckResult a plain value: returning one allocates nothing.
const maxFigures = 12

// Figure is one named number (or text) a check reports, e.g. sessions=12.
type Figure struct {
	Name string
	// Text, when not empty, is reported instead of Value.
	Text  string
	Value float64
}

// CheckResult is what a check returns: a status, an optional message and up to 12 figures.
// Build it with Healthy/Degraded/Unhealthy and Add:
//
//	return server.Healthy().Add("sessions", float64(n)).AddText("addr", a)
type CheckResult struct {
	Status  Status
	Message string
	n       int
	figs    [maxFigures]Figure
}

// Healthy, Degraded and Unhealthy start a CheckResult with that status.
func Healthy() CheckResult { return CheckResult{Status: StatusHealthy} }

// Degraded returns a degraded result with a message saying why.
func Degraded(msg string) CheckResult { return CheckResult{Status: StatusDegraded, Message: msg} }

// Unhealthy returns an unhealthy result with a message saying why.
func Unhealthy(msg string) CheckResult { return CheckResult{Status: StatusUnhealthy, Message: msg} }

// Add appends a numeric figure (dropped past 12) and returns r for chaining.
func (r CheckResult) Add(name string, v float64) CheckResult {
	if r.n < maxFigures {
		r.figs[r.n] = Figure{Name: name, Value: v}
		r.n++
	}
	return r
}

// AddText appends a text figure (dropped past 12) and returns r for chaining.
func (r CheckResult) AddText(name, text string) CheckResult {
	if r.n < maxFigures {
		r.figs[r.n] = Figure{Name: name, Text: text}
		r.n++
	}
	return r
}

// Figures returns the figures of r (aliasing r: valid while r is).
func (r *CheckResult) Figures() []Figure { return r.figs[:r.n] }

// CheckFunc reports the health of one subsystem. It is called on every /health request,
// concurrently: it must be cheap (read counters and atomics, never block or do I/O) and
// safe for concurrent use.
type CheckFunc func() CheckResult

type namedCheck struct {
	name string
	path string // "/health/<name>"
	fn   CheckFunc
}

// Reason is one cause for not being ready. Reasons are bits: several can hold at once.
type Reason uint64

// Built-in reasons for /ready to answer 503.
const (
	// ReasonStarting holds from NewDaemon until Start has bound every listener.
	ReasonStarting Reason = 1 << iota
	// ReasonDraining holds from the start of Shutdown.
	ReasonDraining
	// ReasonMemoryGuard holds while the memory guard refuses new work.
	ReasonMemoryGuard
	// ReasonOverloaded holds while admission control sheds load (the limits subsystem).
	ReasonOverloaded
	nBuiltinReasons = 4
)

var (
	reasonMu    sync.Mutex
	reasonNames = [64]string{"starting", "draining", "memory_guard", "overloaded"}
	reasonCount = nBuiltinReasons
)

// NewReason registers a named reason for not being ready (e.g. "cluster_joining") and
// returns its bit. At most 64 reasons exist per process; NewReason panics past that.
// Call it at init or setup, not per request. Registering a name twice returns the same bit.
func NewReason(name string) Reason {
	reasonMu.Lock()
	defer reasonMu.Unlock()
	for i := 0; i < reasonCount; i++ {
		if reasonNames[i] == name {
			return Reason(1) << i
		}
	}
	if reasonCount == 64 {
		panic("server: NewReason: more than 64 readiness reasons")
	}
	reasonNames[reasonCount] = name
	reasonCount++
	return Reason(1) << (reasonCount - 1)
}

// String returns the reason's name(s), comma-separated.
func (r Reason) String() string {
	var b []byte
	b = r.appendNames(b, ',', false)
	return string(b)
}

func (r Reason) appendNames(b []byte, sep byte, quote bool) []byte {
	first := true
	for i := 0; i < 64; i++ {
		if r&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, sep)
		}
		first = false
		name := reasonNames[i] // written only before the bit is handed out
		if quote {
			b = codec.AppendString(b, name)
		} else {
			b = append(b, name...)
		}
	}
	return b
}

// Readiness says whether the process should get new work (/ready). It is a set of reasons
// for not being ready; ready means the set is empty. Safe for concurrent use; reading is
// one atomic load.
type Readiness struct {
	mask atomic.Uint64
}

// Set turns reason on or off.
func (r *Readiness) Set(reason Reason, on bool) {
	for {
		old := r.mask.Load()
		nw := old &^ uint64(reason)
		if on {
			nw = old | uint64(reason)
		}
		if old == nw || r.mask.CompareAndSwap(old, nw) {
			return
		}
	}
}

// Ready reports whether no reason holds.
func (r *Readiness) Ready() bool { return r.mask.Load() == 0 }

// Reasons returns the reasons that hold now.
func (r *Readiness) Reasons() Reason { return Reason(r.mask.Load()) }

// Health answers the health, readiness and liveness endpoints from pluggable checks.
// Handlers are plain fasthttp.RequestHandlers that build the JSON by appending into a
// pooled buffer: a /health with the built-in checks allocates nothing in steady state.
// All methods are safe for concurrent use.
type Health struct {
	checks  atomic.Pointer[[]namedCheck] // copy-on-write
	addMu   sync.Mutex
	ready   *Readiness
	version string
	started time.Time
}

// NewHealth returns a Health reporting version. ready may be nil (always ready).
func NewHealth(version string, ready *Readiness) *Health {
	if ready == nil {
		ready = &Readiness{}
	}
	h := &Health{ready: ready, version: version, started: time.Now()}
	h.checks.Store(&[]namedCheck{})
	return h
}

// Readiness returns the readiness flags that /ready reports.
func (h *Health) Readiness() *Readiness { return h.ready }

// AddCheck adds (or replaces) the check called name: it is reported by /health and on its
// own at /health/<name>. Checks are reported in the order they were first added.
func (h *Health) AddCheck(name string, fn CheckFunc) {
	h.addMu.Lock()
	defer h.addMu.Unlock()
	old := *h.checks.Load()
	next := make([]namedCheck, 0, len(old)+1)
	replaced := false
	for _, c := range old {
		if c.name == name {
			c.fn = fn
			replaced = true
		}
		next = append(next, c)
	}
	if !replaced {
		next = append(next, namedCheck{name: name, path: "/health/" + name, fn: fn})
	}
	h.checks.Store(&next)
}

// Check runs every check and returns the overall status (the worst one).
func (h *Health) Check() Status {
	worst := StatusHealthy
	for _, c := range *h.checks.Load() {
		if st := c.fn().Status; st > worst {
			worst = st
		}
	}
	return worst
}

// Paths served by Health.
const (
	PathHealth = "/health"
	PathReady  = "/ready"
	PathLive   = "/live"
	PathPing   = "/api/ping"
)

// Routes returns the health endpoints by exact path, to mount on the main HTTP port:
// /health, /health/<check> for every check added so far (transport, session, registry,
// ...), /ready, /live and /api/ping. Checks added later are still served by
// Handle for any /health/<name> path; mount Handle on the "/health/" prefix to get them.
func (h *Health) Routes() map[string]fasthttp.RequestHandler {
	r := map[string]fasthttp.RequestHandler{
		PathHealth: h.serveHealth,
		PathReady:  h.serveReady,
		PathLive:   h.serveLive,
		PathPing:   h.servePing,
	}
	for _, c := range *h.checks.Load() {
		r[c.path] = h.Handle
	}
	return r
}

// Handler returns the handler of one path from Routes, or nil when path is not one.
func (h *Health) Handler(path string) fasthttp.RequestHandler {
	switch path {
	case PathHealth:
		return h.serveHealth
	case PathReady:
		return h.serveReady
	case PathLive:
		return h.serveLive
	case PathPing:
		return h.servePing
	}
	for _, c := range *h.checks.Load() {
		if c.path == path {
			return h.Handle
		}
	}
	return nil
}

// Match reports whether path is one Health serves (for a router that dispatches by
// prefix before parsing further).
func (h *Health) Match(path []byte) bool {
	switch string(path) {
	case PathHealth, PathReady, PathLive, PathPing:
		return true
	}
	for _, c := range *h.checks.Load() {
		if string(path) == c.path {
			return true
		}
	}
	return false
}

// Handle serves any Health path, dispatching on ctx.Path(); unknown paths get 404.
func (h *Health) Handle(ctx *fasthttp.RequestCtx) {
	p := ctx.Path()
	switch string(p) {
	case PathHealth:
		h.serveHealth(ctx)
		return
	case PathReady:
		h.serveReady(ctx)
		return
	case PathLive:
		h.serveLive(ctx)
		return
	case PathPing:
		h.servePing(ctx)
		return
	}
	for _, c := range *h.checks.Load() {
		if string(p) == c.path {
			h.serveChecks(ctx, c.name)
			return
		}
	}
	ctx.Error(`{"error":"not found"}`, fasthttp.StatusNotFound)
}

var healthBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *Health) serveHealth(ctx *fasthttp.RequestCtx) { h.serveChecks(ctx, "") }

// serveChecks answers with every check (only == "") or the one named only.
func (h *Health) serveChecks(ctx *fasthttp.RequestCtx, only string) {
	if !allowGet(ctx) {
		return
	}
	bp := healthBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"status":"`...)
	statusAt := len(b)
	b = append(b, `unhealthy","version":`...) // the status is written over once known
	b = codec.AppendString(b, h.version)
	b = append(b, `,"uptime_seconds":`...)
	b = strconv.AppendInt(b, int64(time.Since(h.started)/time.Second), 10)
	b = append(b, `,"checks":[`...)
	worst := StatusHealthy
	n := 0
	for _, c := range *h.checks.Load() {
		if only != "" && c.name != only {
			continue
		}
		res := c.fn()
		if res.Status > worst {
			worst = res.Status
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendCheck(b, c.name, &res)
	}
	b = append(b, "]}"...)
	// Replace the placeholder: `unhealthy",` is 11 bytes; shorter names shift the rest.
	b = setStatus(b, statusAt, worst)
	code := fasthttp.StatusOK
	if worst == StatusUnhealthy {
		code = fasthttp.StatusServiceUnavailable
	}
	writeJSON(ctx, code, b)
	*bp = b
	healthBufPool.Put(bp)
}

// setStatus overwrites the placeholder "unhealthy" at b[at:] with st's name.
func setStatus(b []byte, at int, st Status) []byte {
	const placeholder = "unhealthy"
	name := st.String()
	if len(name) == len(placeholder) {
		copy(b[at:], name)
		return b
	}
	// Shift the tail left by the difference (names are never longer than the placeholder).
	d := len(placeholder) - len(name)
	copy(b[at:], name)
	copy(b[at+len(name):], b[at+len(placeholder):])
	return b[:len(b)-d]
}

func appendCheck(b []byte, name string, r *CheckResult) []byte {
	b = append(b, `{"name":`...)
	b = codec.AppendString(b, name)
	b = append(b, `,"status":"`...)
	b = append(b, r.Status.String()...)
	b = append(b, '"')
	if r.Message != "" {
		b = append(b, `,"message":`...)
		b = codec.AppendString(b, r.Message)
	}
	for _, f := range r.Figures() {
		b = append(b, ',')
		b = codec.AppendString(b, f.Name)
		b = append(b, ':')
		if f.Text != "" {
			b = codec.AppendString(b, f.Text)
		} else {
			b = appendJSONNumber(b, f.Value)
		}
	}
	return append(b, '}')
}

func (h *Health) serveReady(ctx *fasthttp.RequestCtx) {
	if !allowGet(ctx) {
		return
	}
	reasons := h.ready.Reasons()
	if reasons == 0 {
		writeJSON(ctx, fasthttp.StatusOK, []byte(`{"ready":true}`))
		return
	}
	bp := healthBufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"ready":false,"reasons":[`...)
	b = reasons.appendNames(b, ',', true)
	b = append(b, "]}"...)
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, b)
	*bp = b
	healthBufPool.Put(bp)
}

func (h *Health) serveLive(ctx *fasthttp.RequestCtx) {
	if !allowGet(ctx) {
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, []byte(`{"status":"alive"}`))
}

func (h *Health) servePing(ctx *fasthttp.RequestCtx) {
	if !allowGet(ctx) {
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, []byte(`{"status":"ok"}`))
}

// allowGet refuses methods other than GET and HEAD with 405.
func allowGet(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Error(`{"error":"method not allowed"}`, fasthttp.StatusMethodNotAllowed)
	ctx.Response.Header.Set("Allow", "GET, HEAD") // after Error, which resets the response
	return false
}

func writeJSON(ctx *fasthttp.RequestCtx, code int, body []byte) {
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(body) // copies into the response's own pooled buffer
}

var contentTypeJSON = []byte("application/json")

// appendJSONNumber writes v as a JSON number (integers without a fraction); NaN and ±Inf,
// which JSON cannot carry, become null.
func appendJSONNumber(b []byte, v float64) []byte {
	if v != v || v > 1e308 || v < -1e308 {
		return append(b, "null"...)
	}
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
