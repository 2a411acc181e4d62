package server

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/erlmcp/erlmcp-go/codec"
)

// otlpReceiver is an in-test OTLP/HTTP collector: it decodes every export request.
type otlpReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	// spans with their resource attributes.
	spans []receivedSpan
	paths []string
}

type receivedSpan struct {
	span     *tracepb.Span
	resource map[string]string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		data, _ := io.ReadAll(body)
		var ex collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &ex); err != nil {
			t.Errorf("OTLP export is not protobuf: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		for _, rs := range ex.GetResourceSpans() {
			res := attrMap(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					r.spans = append(r.spans, receivedSpan{sp, res})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) byName(name string) *receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.spans {
		if r.spans[i].span.GetName() == name {
			return &r.spans[i]
		}
	}
	return nil
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = v.String()
			if _, ok := v.GetValue().(*commonpb.AnyValue_IntValue); ok {
				m[kv.GetKey()] = itoa(v.GetIntValue())
			}
		}
	}
	return m
}

func itoa(n int64) string { return string(appendJSONNumber(nil, float64(n))) }

// TestTracingSpans serves requests over TCP with tracing on and checks the spans that
// reach an OTLP/HTTP receiver: names, attributes, resource, and the parent taken from
// params._meta.traceparent.
func TestTracingSpans(t *testing.T) {
	rcv := newOTLPReceiver(t)
	tr, err := NewTracing(TracingConfig{Endpoint: rcv.srv.URL, ServiceVersion: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	s := newDemoServer(t, Config{Middleware: []Middleware{tr.Middleware()}})
	if err := AddTool(s, &Tool{Name: "fail"}, func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, any, error) {
		return nil, nil, codec.NewError(codec.CodeRateLimited, "slow down")
	}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, startTCP(t, s))
	c.initialize(LatestSessionVersion)

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	c.call("tools/call", map[string]any{
		"name": "echo", "arguments": map[string]any{"text": "traced"},
		"_meta": map[string]any{"traceparent": "00-" + traceID + "-" + parentID + "-01"},
	})
	wantError(t, c.call("tools/call", map[string]any{"name": "fail", "arguments": map[string]any{}}), int(codec.CodeRateLimited), "slow down")
	c.call("resources/read", map[string]any{"uri": "erlmcp://demo/readme"})
	c.call("prompts/get", map[string]any{"name": "greet", "arguments": map[string]any{"name": "Ada"}})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}

	echo := rcv.byName("tools/call echo")
	if echo == nil {
		t.Fatalf("no span for tools/call echo; got %d spans", len(rcv.spans))
	}
	sp := echo.span
	if got := hex.EncodeToString(sp.GetTraceId()); got != traceID {
		t.Fatalf("trace id %s, want %s (from _meta.traceparent)", got, traceID)
	}
	if got := hex.EncodeToString(sp.GetParentSpanId()); got != parentID {
		t.Fatalf("parent span id %s, want %s", got, parentID)
	}
	if sp.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("span kind %v", sp.GetKind())
	}
	a := attrMap(sp.GetAttributes())
	want := map[string]string{
		"mcp.method.name": "tools/call", "rpc.method": "tools/call", "gen_ai.tool.name": "echo",
		"mcp.transport": "tcp", "network.transport": "tcp", "jsonrpc.request.id": "2",
		"mcp.protocol.version": LatestSessionVersion,
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, a[k], v, a)
		}
	}
	if len(a["mcp.session.id"]) != 32 {
		t.Errorf("mcp.session.id = %q", a["mcp.session.id"])
	}
	if echo.resource["service.name"] != "erlmcp" || echo.resource["service.version"] != "9.9.9" {
		t.Errorf("resource: %v", echo.resource)
	}

	fail := rcv.byName("tools/call fail")
	if fail == nil {
		t.Fatal("no span for the failing call")
	}
	fa := attrMap(fail.span.GetAttributes())
	if fa["error.type"] != "rate_limited" || fa["rpc.jsonrpc.error_code"] != "-32003" || fail.span.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("failing span: %v status %v", fa, fail.span.GetStatus())
	}
	if len(fail.span.GetParentSpanId()) != 0 {
		t.Errorf("span without traceparent has a parent %x", fail.span.GetParentSpanId())
	}
	if r := rcv.byName("resources/read erlmcp://demo/readme"); r == nil || attrMap(r.span.GetAttributes())["mcp.resource.uri"] != "erlmcp://demo/readme" {
		t.Errorf("resources/read span: %+v", r)
	}
	if r := rcv.byName("prompts/get greet"); r == nil || attrMap(r.span.GetAttributes())["gen_ai.prompt.name"] != "greet" {
		t.Errorf("prompts/get span: %+v", r)
	}
	for _, p := range rcv.paths {
		if p != "/v1/traces" {
			t.Errorf("export to %s, want /v1/traces", p)
		}
	}
}

// headerOutput is an Output whose transport carries a traceparent header, as the HTTP
// transport's per-request output does.
type headerOutput struct {
	discard
	parent string
}

func (o *headerOutput) TraceHeaders() (string, string) { return o.parent, "vendor=1" }

type discard struct{}

func (discard) Reply([]byte)      {}
func (discard) Send([]byte) error { return nil }
func (discard) Hold()             {}
func (discard) Release()          {}

// TestTracingHeaderParent: without _meta.traceparent the parent comes from the transport
// (TraceHeaders); with both, _meta wins.
func TestTracingHeaderParent(t *testing.T) {
	rcv := newOTLPReceiver(t)
	tr, err := NewTracing(TracingConfig{Endpoint: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := newDemoServer(t, Config{Middleware: []Middleware{tr.Middleware()}})
	out := &headerOutput{parent: "00-11111111111111111111111111111111-2222222222222222-01"}
	ss := s.NewSession("http", "sess-1", out)
	s.HandleFrame(ss, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), out)
	s.HandleFrame(ss, []byte(`{"jsonrpc":"2.0","id":2,"method":"prompts/list","params":{"_meta":{"traceparent":"00-33333333333333333333333333333333-4444444444444444-01"}}}`), out)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr.Shutdown(ctx)

	list := rcv.byName("tools/list")
	if list == nil || hex.EncodeToString(list.span.GetParentSpanId()) != "2222222222222222" ||
		hex.EncodeToString(list.span.GetTraceId()) != "11111111111111111111111111111111" || list.span.GetTraceState() != "vendor=1" {
		t.Fatalf("header parent not used: %+v", list)
	}
	if a := attrMap(list.span.GetAttributes()); a["mcp.session.id"] != "sess-1" || a["mcp.transport"] != "http" {
		t.Fatalf("attributes: %v", a)
	}
	pl := rcv.byName("prompts/list")
	if pl == nil || hex.EncodeToString(pl.span.GetParentSpanId()) != "4444444444444444" {
		t.Fatalf("_meta parent did not win over the header: %+v", pl)
	}
}

// TestTracingSettings: tracing is off by default, and then installs no middleware.
func TestTracingSettings(t *testing.T) {
	d := startDaemon(t, nil)
	if d.obs.tracing != nil || len(d.obs.middleware()) != 0 {
		t.Fatal("tracing off but middleware installed")
	}
	without := len(d.Server().Config().Middleware) // other subsystems' (limits)
	rcv := newOTLPReceiver(t)
	d = startDaemon(t, func(st *Settings) {
		st.Observability.Tracing.Enabled = true
		st.Observability.Tracing.Endpoint = rcv.srv.URL
	})
	if d.obs.tracing == nil || len(d.Server().Config().Middleware) != without+1 {
		t.Fatal("tracing on but no middleware")
	}
	c := dial(t, d.TCPAddr().String())
	c.initialize(LatestSessionVersion)
	c.call("tools/list", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if rcv.byName("tools/list") == nil || rcv.byName("initialize") == nil {
		t.Fatal("daemon shutdown did not flush the spans")
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":           "http://collector:4318/v1/traces",
		"http://collector:4318/":          "http://collector:4318/v1/traces",
		"https://c.example/otlp":          "https://c.example/otlp/v1/traces",
		"http://collector:4318/v1/traces": "http://collector:4318/v1/traces",
		"collector:4318":                  "http://collector:4318/v1/traces",
	} {
		got, err := tracesURL(in)
		if err != nil || got != want {
			t.Errorf("tracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := tracesURL("http://"); err == nil {
		t.Error("tracesURL accepted a URL with no host")
	}
	if !endpointPortIsGRPC("http://otel-collector:4317") || endpointPortIsGRPC("http://otel-collector:4318") {
		t.Error("endpointPortIsGRPC")
	}
}

// TestTracingHTTPHeaderParent: over real Streamable HTTP, a POST's traceparent header
// parents the span of the request it carries.
func TestTracingHTTPHeaderParent(t *testing.T) {
	rcv := newOTLPReceiver(t)
	tr, err := NewTracing(TracingConfig{Endpoint: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := newDemoServer(t, Config{Middleware: []Middleware{tr.Middleware()}})
	url, _ := startHTTP(t, s, HTTPConfig{})
	hc := newHTTPClient(t, url)
	hc.initialize()
	resp := hc.post(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"traced"}}}`,
		map[string]string{"traceparent": "00-55555555555555555555555555555555-6666666666666666-01", "tracestate": "v=2"})
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr.Shutdown(ctx)
	sp := rcv.byName("tools/call echo")
	if sp == nil {
		t.Fatal("no span for tools/call over HTTP")
	}
	if hex.EncodeToString(sp.span.GetTraceId()) != "55555555555555555555555555555555" || hex.EncodeToString(sp.span.GetParentSpanId()) != "6666666666666666" || sp.span.GetTraceState() != "v=2" {
		t.Fatalf("HTTP traceparent header not used: trace %x parent %x state %q", sp.span.GetTraceId(), sp.span.GetParentSpanId(), sp.span.GetTraceState())
	}
	if a := attrMap(sp.span.GetAttributes()); a["mcp.transport"] != "http" {
		t.Fatalf("attributes: %v", a)
	}
}
