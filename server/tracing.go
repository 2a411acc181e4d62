package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig configures OpenTelemetry tracing (settings observability.tracing).
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
	// (e.g. http://otel-collector:4318); "/v1/traces" is appended unless the path already
	// ends with it. Empty: the exporter's own environment variables, else localhost:4318.
	Endpoint string
	// SampleRatio is the fraction of new traces sampled (0..1); requests that carry a
	// sampled parent traceparent are always sampled (parent-based). Zero means 1.
	SampleRatio float64
	// ServiceVersion is the service.version resource attribute.
	ServiceVersion string
}

// Tracing owns the tracer provider and its OTLP exporter.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// NewTracing starts an OTLP/HTTP exporter and a batching tracer provider with the resource
// service.name=erlmcp, service.version=cfg.ServiceVersion (OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME override them). Nothing is sent until a span ends.
func NewTracing(cfg TracingConfig) (*Tracing, error) {
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		u, err := tracesURL(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("observability.tracing: OTLP exporter: %w", err)
	}
	return newTracingWith(cfg, sdktrace.WithBatcher(exp))
}

func newTracingWith(cfg TracingConfig, export sdktrace.TracerProviderOption) (*Tracing, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "erlmcp"),
		attribute.String("service.version", cfg.ServiceVersion),
	))
	if err != nil {
		return nil, fmt.Errorf("observability.tracing: resource: %w", err)
	}
	if env, err := resource.Merge(res, resource.Environment()); err == nil {
		res = env
	}
	ratio := cfg.SampleRatio
	if ratio <= 0 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(
		export,
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return &Tracing{tp: tp}, nil
}

// tracesURL turns an OTLP base endpoint into the traces URL.
func tracesURL(endpoint string) (string, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("observability.tracing.endpoint %q: want a URL such as http://otel-collector:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// endpointPortIsGRPC reports whether endpoint names port 4317, OTLP's gRPC port, which an
// OTLP/HTTP exporter cannot talk to (the seed's example uses it).
func endpointPortIsGRPC(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || !strings.Contains(endpoint, "://") {
		_, port, _ := net.SplitHostPort(endpoint)
		return port == "4317"
	}
	return u.Port() == "4317"
}

// TracerProvider returns the provider (for subsystems that make their own spans).
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tp }

// Middleware returns the middleware that makes one server span per request.
func (t *Tracing) Middleware() Middleware { return TracingMiddleware(t.tp) }

// Shutdown flushes the spans still queued and stops the exporter (bounded by ctx).
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("observability.tracing: flushing spans: %w", err)
	}
	return nil
}

// TraceHeaders is implemented by an Output that carries the W3C trace context of its
// transport, e.g. the HTTP transport's per-request Output returning the request's
// traceparent and tracestate headers. The tracing middleware uses it when the request's
// params._meta has no traceparent (a traceparent in _meta, closer to the message, wins).
type TraceHeaders interface {
	TraceHeaders() (traceparent, tracestate string)
}

// traceCarrier feeds one traceparent/tracestate pair to the W3C propagator without a map.
type traceCarrier struct{ parent, state string }

func (c traceCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}
func (c traceCarrier) Set(string, string) {}
func (c traceCarrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

// Span attribute keys, after OpenTelemetry's MCP and RPC semantic conventions.
const (
	attrMCPMethod    = attribute.Key("mcp.method.name")
	attrRPCMethod    = attribute.Key("rpc.method")
	attrRPCSystem    = attribute.Key("rpc.system")
	attrRequestID    = attribute.Key("jsonrpc.request.id")
	attrSessionID    = attribute.Key("mcp.session.id")
	attrProtocol     = attribute.Key("mcp.protocol.version")
	attrTransport    = attribute.Key("network.transport")
	attrMCPTransport = attribute.Key("mcp.transport")
	attrToolName     = attribute.Key("gen_ai.tool.name")
	attrPromptName   = attribute.Key("gen_ai.prompt.name")
	attrResourceURI  = attribute.Key("mcp.resource.uri")
	attrErrorType    = attribute.Key("error.type")
	attrErrorCode    = attribute.Key("rpc.jsonrpc.error_code")
	attrStatusCode   = attribute.Key("rpc.response.status_code")
)

// TracingMiddleware returns a Middleware that wraps every request in a server span named
// "<method>" or "<method> <tool|prompt|resource>", child of the traceparent found in
// params._meta or else in the transport's headers (TraceHeaders). Install it only when
// tracing is on: with tracing off the daemon leaves it out, so the request path has no
// trace code at all (BenchmarkDispatchTracingOff).
func TracingMiddleware(tp trace.TracerProvider) Middleware {
	tracer := tp.Tracer("github.com/erlmcp/erlmcp-go/server")
	prop := propagation.TraceContext{}
	return func(next Handler) Handler {
		return func(ctx context.Context, r *Request) (any, error) {
			parent, state := r.Traceparent()
			if parent == "" {
				if th, ok := r.out.(TraceHeaders); ok {
					parent, state = th.TraceHeaders()
				}
			}
			if parent != "" {
				ctx = prop.Extract(ctx, traceCarrier{parent, state})
			}
			kind, target := requestTarget(r)
			name := r.Method
			if target != "" {
				name = r.Method + " " + target
			}
			attrs := make([]attribute.KeyValue, 0, 10)
			attrs = append(attrs,
				attrMCPMethod.String(r.Method),
				attrRPCMethod.String(r.Method),
				attrRPCSystem.String("jsonrpc"),
				attrMCPTransport.String(r.Transport),
				attrTransport.String(networkTransport(r.Transport)),
			)
			if id := r.ID.String(); id != "" {
				attrs = append(attrs, attrRequestID.String(id))
			}
			if v := r.ProtocolVersion(); v != "" {
				attrs = append(attrs, attrProtocol.String(v))
			}
			if r.Session != nil {
				attrs = append(attrs, attrSessionID.String(r.Session.ID()))
			}
			if target != "" {
				attrs = append(attrs, kind.String(target))
			}
			ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
			res, err := next(ctx, r)
			if err != nil {
				ce := asCodecError(err)
				span.SetAttributes(
					attrErrorType.String(ce.Code.Name()),
					attrErrorCode.Int(int(ce.Code)),
					attrStatusCode.String(strconv.Itoa(int(ce.Code))),
				)
				span.SetStatus(codes.Error, ce.Message)
			} else if tr, ok := res.(*CallToolResult); ok && tr != nil && tr.IsError {
				span.SetAttributes(attrErrorType.String("tool_error"))
				span.SetStatus(codes.Error, "tool returned isError")
			}
			span.End()
			return res, err
		}
	}
}

// requestTarget returns the attribute key and value naming what r acts on: the tool,
// prompt or resource, from the params its method's prepare step decoded.
func requestTarget(r *Request) (attribute.Key, string) {
	switch st := r.state.(type) {
	case *callState:
		return attrToolName, st.params.Name
	case *promptState:
		return attrPromptName, st.params.Name
	case *readState:
		return attrResourceURI, st.uri
	}
	return "", ""
}

// networkTransport maps our transport names to OpenTelemetry's network.transport values.
func networkTransport(t string) string {
	if t == "stdio" {
		return "pipe"
	}
	return "tcp"
}
