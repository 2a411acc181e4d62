package server

import (
	"context"
	"encoding/json"
	"github.com/erlmcp/erlmcp-go/codec"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serveRoutes serves routes on a loopback port with fasthttp and returns the base URL.
func serveRoutes(t testing.TB, routes map[string]fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if h := routes[string(ctx.Path())]; h != nil {
			h(ctx)
			return
		}
		ctx.Error("no route", fasthttp.StatusNotFound)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// healthDoc is the JSON shape of /health and /health/<check>.
type healthDoc struct {
	Status        string           `json:"status"`
	Version       string           `json:"version"`
	UptimeSeconds *float64         `json:"uptime_seconds"`
	Checks        []map[string]any `json:"checks"`
}

// get fetches url and returns status, content type and body.
func get(t testing.TB, url string) (int, string, []byte) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func getHealth(t testing.TB, url string, wantCode int) healthDoc {
	t.Helper()
	code, ctype, body := get(t, url)
	if code != wantCode {
		t.Fatalf("GET %s: status %d, want %d; body %s", url, code, wantCode, body)
	}
	if ctype != "application/json" {
		t.Fatalf("GET %s: content type %q", url, ctype)
	}
	var d healthDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v: %s", url, err, body)
	}
	if d.UptimeSeconds == nil || d.Checks == nil {
		t.Fatalf("GET %s: missing uptime_seconds or checks: %s", url, body)
	}
	return d
}

func TestHealthStatuses(t *testing.T) {
	ready := &Readiness{}
	h := NewHealth("1.2.3", ready)
	var state Status
	h.AddCheck("alpha", func() CheckResult {
		return Healthy().Add("items", 3).AddText("addr", `127.0.0.1:1 "quoted"`).Add("ratio", 0.25)
	})
	h.AddCheck("beta", func() CheckResult {
		switch state {
		case StatusDegraded:
			return Degraded("half capacity")
		case StatusUnhealthy:
			return Unhealthy("listener\ndown")
		}
		return Healthy()
	})
	base := serveRoutes(t, h.Routes())

	// All healthy: 200 with every check and its figures.
	d := getHealth(t, base+"/health", 200)
	if d.Status != "healthy" || d.Version != "1.2.3" || len(d.Checks) != 2 {
		t.Fatalf("healthy: %+v", d)
	}
	a := d.Checks[0]
	if a["name"] != "alpha" || a["status"] != "healthy" || a["items"] != 3.0 || a["ratio"] != 0.25 || a["addr"] != `127.0.0.1:1 "quoted"` {
		t.Fatalf("alpha check: %v", a)
	}

	// Degraded: still 200, overall degraded, with the message.
	state = StatusDegraded
	d = getHealth(t, base+"/health", 200)
	if d.Status != "degraded" || d.Checks[1]["status"] != "degraded" || d.Checks[1]["message"] != "half capacity" {
		t.Fatalf("degraded: %+v", d)
	}

	// A failing check: 503 unhealthy, on /health and on its own path, not on the other's.
	state = StatusUnhealthy
	d = getHealth(t, base+"/health", 503)
	if d.Status != "unhealthy" || d.Checks[1]["message"] != "listener\ndown" {
		t.Fatalf("unhealthy: %+v", d)
	}
	d = getHealth(t, base+"/health/beta", 503)
	if d.Status != "unhealthy" || len(d.Checks) != 1 || d.Checks[0]["name"] != "beta" {
		t.Fatalf("/health/beta: %+v", d)
	}
	d = getHealth(t, base+"/health/alpha", 200)
	if d.Status != "healthy" || len(d.Checks) != 1 || d.Checks[0]["name"] != "alpha" {
		t.Fatalf("/health/alpha: %+v", d)
	}

	// Readiness: reasons listed while not ready.
	ready.Set(ReasonStarting, true)
	cluster := NewReason("cluster_joining")
	ready.Set(cluster, true)
	code, _, body := get(t, base+"/ready")
	if code != 503 || string(body) != `{"ready":false,"reasons":["starting","cluster_joining"]}` {
		t.Fatalf("/ready while starting: %d %s", code, body)
	}
	ready.Set(ReasonStarting, false)
	ready.Set(cluster, false)
	if code, _, body = get(t, base+"/ready"); code != 200 || string(body) != `{"ready":true}` {
		t.Fatalf("/ready: %d %s", code, body)
	}
	if NewReason("cluster_joining") != cluster {
		t.Fatal("NewReason twice gave two bits")
	}
	if code, _, body = get(t, base+"/live"); code != 200 || string(body) != `{"status":"alive"}` {
		t.Fatalf("/live: %d %s", code, body)
	}
	if code, _, body = get(t, base+"/api/ping"); code != 200 || string(body) != `{"status":"ok"}` {
		t.Fatalf("/api/ping: %d %s", code, body)
	}

	// Only GET and HEAD.
	resp, err := http.Post(base+"/health", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /health: %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestHealthHandleDispatch(t *testing.T) {
	h := NewHealth("v", nil)
	h.AddCheck("x", func() CheckResult { return Healthy() })
	base := serveRoutes(t, map[string]fasthttp.RequestHandler{
		"/health": h.Handle, "/health/x": h.Handle, "/health/nope": h.Handle, "/ready": h.Handle,
	})
	getHealth(t, base+"/health/x", 200)
	if code, _, _ := get(t, base+"/health/nope"); code != 404 {
		t.Fatalf("/health/nope: %d", code)
	}
	if code, _, _ := get(t, base+"/ready"); code != 200 {
		t.Fatalf("/ready: %d", code)
	}
	if h.Handler("/health/x") == nil || h.Handler("/health/nope") != nil || !h.Match([]byte("/api/ping")) || h.Match([]byte("/mcp")) {
		t.Fatal("Handler/Match disagree with the routes")
	}
	// Replacing a check keeps its place.
	h.AddCheck("x", func() CheckResult { return Unhealthy("now failing") })
	if h.Check() != StatusUnhealthy {
		t.Fatal("replaced check not used")
	}
}

func TestAppendJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "tab\there\x01\x1f", "héllo ✓", "bad\xffutf8", "</script>"} {
		b := codec.AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Fatalf("%q → %s → %q", s, b, back)
		}
	}
	for v, want := range map[float64]string{0: "0", 12: "12", -3: "-3", 0.5: "0.5", 1e20: "1e+20"} {
		if got := string(appendJSONNumber(nil, v)); got != want {
			t.Fatalf("%v → %s, want %s", v, got, want)
		}
	}
}

// TestDaemonHealthChecks runs a daemon on loopback ports and reads its built-in checks.
func TestDaemonHealthChecks(t *testing.T) {
	d := startDaemon(t, nil)
	routes := d.HealthRoutes()
	for _, p := range []string{"/health", "/health/transport", "/health/session", "/health/registry", "/health/workers", "/health/memory", "/ready", "/live", "/api/ping"} {
		if routes[p] == nil {
			t.Fatalf("HealthRoutes has no %s", p)
		}
	}
	base := serveRoutes(t, routes)
	c := dial(t, d.TCPAddr().String())
	c.initialize(LatestSessionVersion)

	doc := getHealth(t, base+"/health", 200)
	if doc.Status != "healthy" {
		t.Fatalf("daemon health: %+v", doc)
	}
	names := []string{}
	for _, c := range doc.Checks {
		names = append(names, c["name"].(string))
	}
	if strings.Join(names, ",") != "transport,session,registry,workers,memory" {
		t.Fatalf("checks: %v", names)
	}
	tr := getHealth(t, base+"/health/transport", 200).Checks[0]
	if tr["tcp_addr"] != d.TCPAddr().String() || tr["connections_tcp"] != 1.0 || tr["metrics_addr"] != d.MetricsAddr().String() {
		t.Fatalf("transport check: %v", tr)
	}
	ss := getHealth(t, base+"/health/session", 200).Checks[0]
	if ss["sessions"] != 1.0 || ss["idle_timeout_ms"] != 600000.0 {
		t.Fatalf("session check: %v", ss)
	}
	rg := getHealth(t, base+"/health/registry", 200).Checks[0]
	st := d.Server().Stats()
	if rg["tools"] != float64(st.Tools) || rg["prompts"] != float64(st.Prompts) || st.Tools == 0 {
		t.Fatalf("registry check: %v (stats %+v)", rg, st)
	}
	if code, _, body := get(t, base+"/ready"); code != 200 {
		t.Fatalf("/ready after Start: %d %s", code, body)
	}

	// The memory guard at its hard limit: degraded, not ready, gauge set.
	d.SetMemoryGuardState(2)
	mem := getHealth(t, base+"/health/memory", 200)
	if mem.Status != "degraded" || mem.Checks[0]["memory_guard_state"] != 2.0 || mem.Checks[0]["heap_bytes"].(float64) <= 0 {
		t.Fatalf("memory check under guard: %+v", mem)
	}
	if code, _, body := get(t, base+"/ready"); code != 503 || !strings.Contains(string(body), "memory_guard") {
		t.Fatalf("/ready under memory guard: %d %s", code, body)
	}
	if d.Metrics().MemoryGuardState() != 2 {
		t.Fatal("memory guard gauge not set")
	}
	d.SetMemoryGuardState(0)

	// Draining: not ready, transport degraded.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go d.Shutdown(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for d.Readiness().Ready() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d.Readiness().Reasons()&ReasonDraining == 0 {
		t.Fatalf("not draining after Shutdown: %v", d.Readiness().Reasons())
	}
	<-d.Done()
}

// startDaemon starts a daemon with the default settings on loopback :0 ports (TCP and
// metrics), with tweak applied, and shuts it down at cleanup.
func startDaemon(t testing.TB, tweak func(*Settings)) *Daemon {
	t.Helper()
	st := DefaultSettings()
	st.Transports.TCP.Addr = "127.0.0.1:0"
	st.Observability.Metrics.Addr = "127.0.0.1:0"
	if tweak != nil {
		tweak(&st)
	}
	d, err := NewDaemon(st, BuildInfo{Version: "test-1.0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	// One round trip proves the listener serves (a Shutdown racing the Serve goroutine's
	// start is the loop's business, not this test's), then wait until it is gone.
	c := dial(t, d.TCPAddr().String())
	c.call("ping", nil)
	c.conn.Close()
	for deadline := time.Now().Add(5 * time.Second); d.tcp.Stats().ActiveLine+d.tcp.Stats().ActiveHTTP > 0 || d.Server().Stats().Sessions > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("warm-up connection did not close: %+v %+v", d.tcp.Stats(), d.Server().Stats())
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

func BenchmarkHealth(b *testing.B) {
	d := startDaemon(b, nil)
	h := d.Health()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/health")
	ctx.Request.Header.SetMethod("GET")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h.Handle(&ctx)
	}
}
