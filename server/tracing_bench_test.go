package server

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// benchDispatch serves one tools/list per iteration through HandleFrame, the path every
// transport takes (decode → middleware → route → encode → Reply), with no socket.
func benchDispatch(b *testing.B, cfg Config) {
	s := New(cfg)
	if err := RegisterDemo(s); err != nil {
		b.Fatal(err)
	}
	out := discard{}
	ss := s.NewSession("tcp", "", out)
	frame := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		s.HandleFrame(ss, frame, out)
	}
	b.StopTimer()
	s.Shutdown(context.Background())
}

// BenchmarkDispatchTracingOff is the request path as the daemon builds it with tracing
// off: the tracing middleware is not installed, so the path is the plain server's.
func BenchmarkDispatchTracingOff(b *testing.B) {
	benchDispatch(b, Config{})
}

// BenchmarkDispatchTracingOn adds the tracing middleware with every request sampled into
// a no-op exporter: the cost of making the spans themselves.
func BenchmarkDispatchTracingOn(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	benchDispatch(b, Config{Middleware: []Middleware{TracingMiddleware(tp)}})
}

// TestTracingOffAddsNothing: with tracing off the daemon's middleware chain is exactly the
// other subsystems' — the premise of BenchmarkDispatchTracingOff.
func TestTracingOffAddsNothing(t *testing.T) {
	st := DefaultSettings()
	o, err := newObservability(st, BuildInfo{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.middleware() != nil || o.tracing != nil {
		t.Fatal("tracing is off by default but its middleware is there")
	}
}
