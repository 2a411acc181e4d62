package server

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches the daemon's metrics and parses them with Prometheus' own parser.
func scrape(t testing.TB, d *Daemon) (map[string]*metricFamily, string) {
	t.Helper()
	code, ctype, body := get(t, "http://"+d.MetricsAddr().String()+"/metrics")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("GET /metrics: %d %q", code, ctype)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse as Prometheus text: %v\n%s", err, body)
	}
	out := map[string]*metricFamily{}
	for name, f := range fams {
		out[name] = &metricFamily{typ: f.GetType().String()}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			s := sample{labels: labels}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				s.value = m.GetUntyped().GetValue()
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				s.value = float64(h.GetSampleCount())
				s.sum = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					s.buckets = append(s.buckets, bucket{b.GetUpperBound(), b.GetCumulativeCount()})
				}
			}
			out[name].samples = append(out[name].samples, s)
		}
	}
	return out, string(body)
}

type metricFamily struct {
	typ     string
	samples []sample
}

type sample struct {
	labels  map[string]string
	value   float64 // counter/gauge value, or histogram sample count
	sum     float64
	buckets []bucket
}

type bucket struct {
	le    float64
	count uint64
}

// find returns the sample of family name whose labels include want (k=v pairs).
func (f *metricFamily) find(want ...string) *sample {
	if f == nil {
		return nil
	}
next:
	for i := range f.samples {
		for j := 0; j+1 < len(want); j += 2 {
			if f.samples[i].labels[want[j]] != want[j+1] {
				continue next
			}
		}
		return &f.samples[i]
	}
	return nil
}

func value(t testing.TB, fams map[string]*metricFamily, name string, labels ...string) float64 {
	t.Helper()
	s := fams[name].find(labels...)
	if s == nil {
		t.Fatalf("no %s%v in the scrape", name, labels)
	}
	return s.value
}

// TestMetricsTCPTraffic drives real requests over TCP through the daemon and reads them
// back from its metrics listener.
func TestMetricsTCPTraffic(t *testing.T) {
	d := startDaemon(t, nil)
	c := dial(t, d.TCPAddr().String())
	c.initialize(LatestSessionVersion)
	for range 3 {
		result[map[string]any](t, c.call("tools/list", nil))
	}
	c.call("ping", nil)
	wantError(t, c.call("no/such/method", nil), -32601, "method not found")
	// Random method names must not grow the label set: they all count as "other".
	for i := range 20 {
		c.call(fmt.Sprintf("random/%d", i), nil)
	}
	c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}})

	fams, text := scrape(t, d)
	for _, name := range []string{"erlmcp_requests_total", "erlmcp_errors_total", "erlmcp_latency_seconds"} {
		if !strings.Contains(text, name) {
			t.Fatalf("%s missing from /metrics", name)
		}
	}
	if got := value(t, fams, "erlmcp_requests_total", "method", "tools/list", "transport", "tcp"); got != 3 {
		t.Fatalf("tools/list requests = %v, want 3", got)
	}
	if got := value(t, fams, "erlmcp_requests_total", "method", "initialize", "transport", "tcp"); got != 1 {
		t.Fatalf("initialize requests = %v, want 1", got)
	}
	if got := value(t, fams, "erlmcp_requests_total", "method", "notifications/initialized", "transport", "tcp"); got != 1 {
		t.Fatalf("notifications/initialized = %v, want 1", got)
	}
	if got := value(t, fams, "erlmcp_requests_total", "method", "other", "transport", "tcp"); got != 21 {
		t.Fatalf("other-method requests = %v, want 21", got)
	}
	if got := value(t, fams, "erlmcp_errors_total", "code", "method_not_found"); got != 21 {
		t.Fatalf("method_not_found errors = %v, want 21", got)
	}
	if got := value(t, fams, "erlmcp_errors_total", "code", "rate_limited"); got != 0 {
		t.Fatalf("rate_limited errors = %v, want a 0 series", got)
	}
	for _, s := range fams["erlmcp_requests_total"].samples {
		if strings.HasPrefix(s.labels["method"], "random/") {
			t.Fatalf("a random method became a label: %v", s.labels)
		}
	}

	// The latency histogram: a real Prometheus histogram with le buckets.
	lat := fams["erlmcp_latency_seconds"]
	if lat == nil || lat.typ != "HISTOGRAM" {
		t.Fatalf("erlmcp_latency_seconds is not a histogram: %+v", lat)
	}
	h := lat.find("method", "tools/list", "transport", "tcp")
	if h == nil || h.value != 3 || len(h.buckets) != len(LatencyBuckets)+1 || h.sum <= 0 {
		t.Fatalf("tools/list latency histogram: %+v", h)
	}
	prev := uint64(0)
	if last := h.buckets[len(LatencyBuckets)]; !math.IsInf(last.le, 1) || last.count != 3 {
		t.Fatalf("+Inf bucket: %+v", last)
	}
	for i, b := range h.buckets[:len(LatencyBuckets)] {
		if b.le != LatencyBuckets[i] || b.count < prev {
			t.Fatalf("bucket %d: %+v (previous count %d)", i, b, prev)
		}
		prev = b.count
	}

	// Live gauges and byte counters.
	if got := value(t, fams, "erlmcp_connections_active", "transport", "tcp"); got != 1 {
		t.Fatalf("tcp connections = %v, want 1", got)
	}
	if got := value(t, fams, "erlmcp_sessions_active"); got != 1 {
		t.Fatalf("sessions = %v, want 1", got)
	}
	if got := value(t, fams, "erlmcp_bytes_received_total", "transport", "tcp"); got < 500 {
		t.Fatalf("bytes received = %v", got)
	}
	if got := value(t, fams, "erlmcp_bytes_sent_total", "transport", "tcp"); got < 500 {
		t.Fatalf("bytes sent = %v", got)
	}
	if got := value(t, fams, "erlmcp_memory_guard_state"); got != 0 {
		t.Fatalf("memory guard = %v", got)
	}
	d.SetMemoryGuardState(1)
	d.Metrics().AddRateLimited(2)
	fams, _ = scrape(t, d)
	if value(t, fams, "erlmcp_memory_guard_state") != 1 || value(t, fams, "erlmcp_rate_limited_total") != 2 {
		t.Fatal("memory guard state or rate-limited count not exported")
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_open_fds", "erlmcp_build_info"} {
		if fams[name] == nil {
			t.Errorf("%s missing from /metrics", name)
		}
	}

	// The connection closes: the gauge follows.
	c.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams, _ = scrape(t, d)
		if value(t, fams, "erlmcp_connections_active", "transport", "tcp") == 0 && value(t, fams, "erlmcp_sessions_active") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection and session gauges did not go back to 0")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsPrecreated is issue 13.6 on a fresh daemon: before any request, the seed's
// `curl :9090/metrics | grep -E "erlmcp_(requests|errors|latency)_"` shows the request
// counter and latency histogram of every method of the dispatch table for every transport
// the daemon serves (at zero), and none for the transports it does not serve.
func TestMetricsPrecreated(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name  string
		tweak func(*Settings)
		want  []string
	}{
		{"default", func(*Settings) {}, []string{"tcp", "http"}},
		{"http=off", func(st *Settings) { st.Transports.HTTP.Enabled = false }, []string{"tcp"}},
		{"tls=on", func(st *Settings) {
			st.Transports.TLS = TLSSettings{Enabled: true, Addr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile,
				MinVersion: "1.3", Verify: "verify_none"}
		}, []string{"tcp", "tls", "http"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startSecDaemon(t, tc.tweak)
			fams, text := scrape(t, d)
			seen := map[string]int{} // the seed's grep, by family prefix
			for _, line := range strings.Split(text, "\n") {
				if m := seedMetricsGrep.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "#") {
					seen[m[1]]++
				}
			}
			for _, prefix := range []string{"requests", "errors", "latency"} {
				if seen[prefix] == 0 {
					t.Errorf("grep -E \"erlmcp_(requests|errors|latency)_\" finds no erlmcp_%s_ line on a fresh daemon", prefix)
				}
			}
			for name := range methods {
				for _, tr := range tc.want {
					if s := fams[metricRequests].find("method", name, "transport", tr); s == nil || s.value != 0 {
						t.Errorf("fresh daemon: %s{method=%q,transport=%q} = %+v, want a 0 series", metricRequests, name, tr, s)
					}
					if h := fams[metricLatency].find("method", name, "transport", tr); h == nil || h.value != 0 || len(h.buckets) != len(LatencyBuckets)+1 {
						t.Errorf("fresh daemon: %s{method=%q,transport=%q} = %+v, want an empty histogram", metricLatency, name, tr, h)
					}
				}
			}
			if got, want := len(fams[metricRequests].samples), len(methods)*len(tc.want); got != want {
				t.Errorf("%d %s series, want %d (%d methods x %v)", got, metricRequests, want, len(methods), tc.want)
			}
			for _, s := range fams[metricRequests].samples {
				if !slices.Contains(tc.want, s.labels["transport"]) {
					t.Errorf("series for a transport the daemon does not serve: %v", s.labels)
				}
			}
			t.Logf("transports %v: %d erlmcp_requests_total + erlmcp_latency_seconds series, %d erlmcp_errors_total",
				tc.want, seen["requests"]+seen["latency"], seen["errors"])
		})
	}
}

// seedMetricsGrep is the seed's section 4.2 check, grep -E "erlmcp_(requests|errors|latency)_".
var seedMetricsGrep = regexp.MustCompile(`erlmcp_(requests|errors|latency)_`)

// TestMetricsHTTPTraffic drives Streamable HTTP requests (POST /mcp on the main port) and
// reads their counters.
func TestMetricsHTTPTraffic(t *testing.T) {
	d := startDaemon(t, nil)
	if d.http == nil {
		t.Fatal("the daemon does not serve HTTP on the main port (transports.http is on by default)")
	}
	url := "http://" + d.TCPAddr().String() + "/mcp"
	post := func(sessionID, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sessionID != "" {
			req.Header.Set("Mcp-Session-Id", sessionID)
			req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, body := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("initialize over HTTP: %d %s", resp.StatusCode, body)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	for i := range 4 {
		resp, body = post(sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, i+2))
		if resp.StatusCode != 200 {
			t.Fatalf("tools/list over HTTP: %d %s", resp.StatusCode, body)
		}
	}
	fams, _ := scrape(t, d)
	if got := value(t, fams, "erlmcp_requests_total", "method", "tools/list", "transport", "http"); got != 4 {
		t.Fatalf("HTTP tools/list requests = %v, want 4", got)
	}
	if got := value(t, fams, "erlmcp_requests_total", "method", "initialize", "transport", "http"); got != 1 {
		t.Fatalf("HTTP initialize = %v, want 1", got)
	}
	if fams["erlmcp_latency_seconds"].find("method", "tools/list", "transport", "http") == nil {
		t.Fatal("no HTTP latency histogram")
	}
	if got := value(t, fams, "erlmcp_sessions_active"); got < 1 {
		t.Fatalf("sessions = %v after an HTTP initialize", got)
	}
	// Six POSTs with their answers went through: each is a few hundred bytes each way.
	if got := value(t, fams, "erlmcp_bytes_received_total", "transport", "http"); got < 6*100 {
		t.Fatalf("HTTP bytes received = %v, want at least 600", got)
	}
	if got := value(t, fams, "erlmcp_bytes_sent_total", "transport", "http"); got < 6*100 {
		t.Fatalf("HTTP bytes sent = %v, want at least 600", got)
	}
}

// TestMetricsHTTPRateLimited: MCP requests over Streamable HTTP past the client's quota
// are answered 429 with Retry-After and the -32003 body, and each is counted in
// erlmcp_rate_limited_total and erlmcp_errors_total{code="rate_limited"}.
func TestMetricsHTTPRateLimited(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		// One more than the 3 below: startDaemon's warm-up ping over TCP comes from the same
		// address, and a client's quota is its own on every transport.
		st.RateLimiter.MaxRequestsPerMinute = 4
		st.RateLimiter.MaxBurst = 4
	})
	url := "http://" + d.TCPAddr().String() + "/mcp"
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	limited := 0
	for i := range 6 {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/list")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case i < 3 && resp.StatusCode != 200:
			t.Fatalf("request %d within the quota: %d %s", i, resp.StatusCode, b)
		case i >= 3 && (resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"code":-32003`)):
			t.Fatalf("request %d over the quota: %d Retry-After %q %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		case i >= 3:
			limited++
		}
	}
	fams, _ := scrape(t, d)
	if got := value(t, fams, "erlmcp_rate_limited_total"); got != float64(limited) {
		t.Fatalf("rate limited = %v, want %d", got, limited)
	}
	if got := value(t, fams, "erlmcp_errors_total", "code", "rate_limited"); got != float64(limited) {
		t.Fatalf("errors{rate_limited} = %v, want %d", got, limited)
	}
}

// TestPingRateLimited is the seed's 5.3 loop against /api/ping on the main port, with a
// small quota: past it 429, counted in erlmcp_rate_limited_total; /health is never limited.
func TestPingRateLimited(t *testing.T) {
	d := startDaemon(t, func(st *Settings) {
		st.RateLimiter.MaxRequestsPerMinute = 5
		st.RateLimiter.MaxBurst = 5
	})
	if d.http == nil {
		t.Fatal("the daemon does not serve HTTP on the main port (transports.http is on by default)")
	}
	base := "http://" + d.TCPAddr().String()
	codes := map[int]int{}
	for range 8 {
		code, _, _ := get(t, base+"/api/ping")
		codes[code]++
	}
	if codes[200] == 0 || codes[429] == 0 || codes[200]+codes[429] != 8 {
		t.Fatalf("/api/ping status counts %v, want some 200 then 429", codes)
	}
	for range 8 {
		if code, _, _ := get(t, base+"/health"); code != 200 {
			t.Fatalf("/health rate limited: %d", code)
		}
	}
	fams, _ := scrape(t, d)
	if got := value(t, fams, "erlmcp_rate_limited_total"); got != float64(codes[429]) {
		t.Fatalf("rate limited = %v, want %d", got, codes[429])
	}
}

func TestMetricsOff(t *testing.T) {
	d := startDaemon(t, func(st *Settings) { st.Observability.Metrics.Enabled = false })
	if d.Metrics() != nil || d.MetricsAddr() != nil || d.Server().Config().Observer != nil {
		t.Fatal("metrics disabled but installed")
	}
	d.SetMemoryGuardState(1) // must not panic without metrics
}

// TestMetricsPprof checks /debug/pprof/ is served on the metrics listener only when
// observability.metrics.pprof is on.
func TestMetricsPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		d := startDaemon(t, func(st *Settings) { st.Observability.Metrics.Pprof = on })
		base := "http://" + d.MetricsAddr().String()
		code, _, body := get(t, base+"/debug/pprof/goroutine?debug=1")
		if on && (code != 200 || !bytes.Contains(body, []byte("goroutine profile:"))) {
			t.Fatalf("pprof on: GET goroutine profile: %d %.80q", code, body)
		}
		if !on && code != 404 {
			t.Fatalf("pprof off: GET goroutine profile: %d, want 404", code)
		}
		if code, _, _ := get(t, base+"/metrics"); code != 200 {
			t.Fatalf("pprof=%v: /metrics %d", on, code)
		}
	}
}

// TestMetricsConcurrentFirstUse races the lazy creation of series.
func TestMetricsConcurrentFirstUse(t *testing.T) {
	m := NewMetrics("t")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				m.RequestDone([]string{"tcp", "http", "x"}[j%3], []string{"ping", "tools/call", "zzz"}[(i+j)%3], 0, time.Microsecond)
			}
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `erlmcp_requests_total{method="other",transport="other"}`) {
		t.Fatalf("missing other/other series:\n%s", buf.String())
	}
	total := 0.0
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, mm := range fams["erlmcp_requests_total"].GetMetric() {
		total += mm.GetCounter().GetValue()
	}
	if total != 8000 {
		t.Fatalf("requests counted %v, want 8000", total)
	}
}

// BenchmarkMetricsRequestDone is the Observer's cost per request, with the series made on
// first use (precreated=false) and by Precreate at start (true, what the daemon does): the
// same pointer load either way.
func BenchmarkMetricsRequestDone(b *testing.B) {
	for _, pre := range []bool{false, true} {
		b.Run(fmt.Sprintf("precreated=%v", pre), func(b *testing.B) {
			m := NewMetrics("b")
			if pre {
				m.Precreate("tcp", "http")
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.RequestDone("tcp", "tools/call", 0, 300*time.Microsecond)
				}
			})
		})
	}
}

// BenchmarkMetricsScrape is the cost of one /metrics body (the erlmcp_* set, Go runtime and
// process metrics) with the request and latency series pre-created for no transport (as
// before issue 13.6: series appear on first use), for the default daemon's tcp and http,
// and with tls as well. Scrapes happen every 15 s or so, not per request.
func BenchmarkMetricsScrape(b *testing.B) {
	for _, tc := range []struct {
		name       string
		transports []string
	}{{"none", nil}, {"tcp,http", []string{"tcp", "http"}}, {"tcp,tls,http", []string{"tcp", "tls", "http"}}} {
		b.Run("precreated="+tc.name, func(b *testing.B) {
			m := NewMetrics("b")
			m.Precreate(tc.transports...)
			var buf bytes.Buffer
			m.WritePrometheus(&buf)
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				m.WritePrometheus(&buf)
			}
		})
	}
}
