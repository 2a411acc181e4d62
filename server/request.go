package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/erlmcp/erlmcp-go/codec"
)

// Handler serves one request and returns its result (any value that encodes to a JSON
// object) or an error. A *codec.Error is sent as is; any other error becomes -32603.
type Handler func(ctx context.Context, r *Request) (any, error)

// Middleware wraps a Handler: logging, metrics, auth, rate limits.
type Middleware func(next Handler) Handler

// Request is one request being served, as handlers and middleware see it. It is valid until
// the handler returns; handlers that start goroutines must not keep it past that.
type Request struct {
	// Session is the session the request arrived on.
	Session *Session
	// Method is the JSON-RPC method.
	Method string
	// ID is the request id (owned copy for async requests).
	ID codec.ID
	// Params is the raw params object (nil when absent). For inline requests it aliases the
	// transport's read buffer: copy what you keep.
	Params []byte
	// Transport names the transport ("tcp", "stdio", "http").
	Transport string

	out           Output
	in            *inbound        // what the transport knew of the message (nil: a line transport)
	principal     *Principal      // who sent it, as admission found (nil without auth)
	progressToken json.RawMessage // params._meta.progressToken, owned
	meta          *requestMeta
	version       protoVersion // protocol version that applies to this request
	state         any          // decoded params stashed by a method's prepare step
	call          callState    // tools/call's state (state points here), pooled with the request
}

// requestMeta is the part of params._meta that the server reads itself.
type requestMeta struct {
	ProgressToken      json.RawMessage     `json:"progressToken,omitempty"`
	ProtocolVersion    string              `json:"io.modelcontextprotocol/protocolVersion,omitempty"`
	ClientCapabilities *ClientCapabilities `json:"io.modelcontextprotocol/clientCapabilities,omitempty"`
	ClientInfo         *Implementation     `json:"io.modelcontextprotocol/clientInfo,omitempty"`
	Traceparent        string              `json:"traceparent,omitempty"`
	Tracestate         string              `json:"tracestate,omitempty"`
}

// paramsMeta is used to pull _meta out of any params object.
type paramsMeta struct {
	Meta *requestMeta `json:"_meta,omitempty"`
}

var requestPool = sync.Pool{New: func() any { return new(Request) }}

func getRequest() *Request { return requestPool.Get().(*Request) }

func (r *Request) release() {
	*r = Request{}
	requestPool.Put(r)
}

// statelessEra reports whether r is a request of the stateless era (2026-07-28): its own
// params._meta names that protocol version. Only such requests live outside a session's
// lifecycle; any other _meta (a progress token, an empty object) changes nothing.
func (r *Request) statelessEra() bool {
	return r.meta != nil && parseVersion(r.meta.ProtocolVersion) >= proto20260728
}

// Principal returns who sent the request, as admission authenticated it (the request's own
// credentials, else its session's), or nil when auth is off or the method is exempt (ping).
func (r *Request) Principal() *Principal {
	if r.principal != nil {
		return r.principal
	}
	return r.Session.Principal()
}

// ProtocolVersion returns the protocol version that applies to this request.
func (r *Request) ProtocolVersion() string { return r.version.String() }

// Traceparent returns the W3C traceparent carried in params._meta, if any.
func (r *Request) Traceparent() (traceparent, tracestate string) {
	if r.meta == nil {
		return "", ""
	}
	return r.meta.Traceparent, r.meta.Tracestate
}

// ProgressToken returns the raw progress token the client sent, or nil.
func (r *Request) ProgressToken() json.RawMessage { return r.progressToken }

// Progress sends notifications/progress for this request, when the client asked for it
// (params._meta.progressToken). It is a no-op otherwise.
func (r *Request) Progress(progress, total float64, message string) error {
	if r.progressToken == nil {
		return nil
	}
	return notify(r.out, NotificationProgress, &ProgressParams{
		ProgressToken: r.progressToken, Progress: progress, Total: total, Message: message,
	})
}

// Log sends notifications/message related to this request, subject to the session's level.
func (r *Request) Log(level LoggingLevel, logger string, data any) error {
	return r.Session.logTo(r.out, level, logger, data)
}

// Notify sends a notification related to this request (on the same stream as its reply).
func (r *Request) Notify(method string, params any) error { return notify(r.out, method, params) }

// CreateMessage asks the client to sample an LLM (sampling/createMessage). The handler must
// run asynchronously (not Inline), since the answer arrives on the same connection.
func (r *Request) CreateMessage(ctx context.Context, p *CreateMessageParams) (*CreateMessageResult, error) {
	var res CreateMessageResult
	if err := r.Session.call(ctx, r.out, MethodSamplingCreateMessage, p, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Elicit asks the client to collect input from the user (elicitation/create).
func (r *Request) Elicit(ctx context.Context, p *ElicitParams) (*ElicitResult, error) {
	var res ElicitResult
	if err := r.Session.call(ctx, r.out, MethodElicitationCreate, p, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ListRoots asks the client for its roots (roots/list).
func (r *Request) ListRoots(ctx context.Context) (*ListRootsResult, error) {
	var res ListRootsResult
	if err := r.Session.call(ctx, r.out, MethodRootsList, struct{}{}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
