package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/valyala/fasthttp"
)

// This file is the 2026-07-28 (stateless) era: requests carry their protocol version,
// client capabilities and client info in params._meta, no session is kept between them,
// every result says its resultType, and a handler that needs client input answers with an
// input-required result (multi round-trip requests, SEP-2322) instead of calling the
// client.

// Keys of the per-request _meta (RequestMetaObject).
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	metaClientInfo         = "io.modelcontextprotocol/clientInfo"
	metaLogLevel           = "io.modelcontextprotocol/logLevel"
	metaServerInfo         = "io.modelcontextprotocol/serverInfo"
)

// Error codes the 2026-07-28 specification defines (-32020…-32022).
const (
	codeHeaderMismatch        = codec.CodeHeaderMismatch
	codeMissingClientCap      = codec.CodeMissingClientCapability
	codeUnsupportedProtoVersn = codec.CodeUnsupportedProtocolVersion
)

// statelessMeta is the request _meta of the stateless era.
type statelessMeta struct {
	ProtocolVersion    *string             `json:"io.modelcontextprotocol/protocolVersion"`
	ClientCapabilities *ClientCapabilities `json:"io.modelcontextprotocol/clientCapabilities"`
	ClientInfo         *Implementation     `json:"io.modelcontextprotocol/clientInfo"`
	LogLevel           LoggingLevel        `json:"io.modelcontextprotocol/logLevel"`
}

// statelessParams is what the transport reads from params before dispatch.
type statelessParams struct {
	Meta         *statelessMeta  `json:"_meta"`
	Name         string          `json:"name"`
	URI          string          `json:"uri"`
	TaskID       string          `json:"taskId"`
	Arguments    json.RawMessage `json:"arguments"`
	RequestState *string         `json:"requestState"`
	// InputResponses are the answers of an input-required retry.
	InputResponses map[string]json.RawMessage `json:"inputResponses"`
}

// methodsNotStateless are session-era methods the stateless era removed: 404, -32601.
var methodsNotStateless = map[string]bool{
	MethodInitialize:           true,
	MethodPing:                 true,
	MethodLoggingSetLevel:      true,
	MethodResourcesSubscribe:   true,
	MethodResourcesUnsubscribe: true,
}

// isStateless tells the era of one POSTed message (notes: a session id, or a session-era
// version header, means the session era; a 2026 or unknown version header, or a _meta
// protocol version, means stateless).
func (h *HTTP) isStateless(ctx *fasthttp.RequestCtx, m *codec.Message) bool {
	if len(ctx.Request.Header.Peek(hdrSessionID)) > 0 {
		return false
	}
	if hv := bytes.TrimSpace(ctx.Request.Header.Peek(hdrProtocol)); len(hv) > 0 {
		pv := parseVersion(b2str(hv))
		return pv == protoUnknown || pv >= proto20260728
	}
	return bytes.Contains(m.Params, []byte(metaProtocolVersion))
}

// serveStateless serves one 2026-07-28 message on a throwaway session; edge is what the
// HTTP edge learnt of the POST (principal, signature, peer).
func (h *HTTP) serveStateless(ctx *fasthttp.RequestCtx, m *codec.Message, okJSON, okSSE bool, edge *inbound) {
	if m.Kind == codec.KindNotification || m.Kind == codec.KindResponse || m.Kind == codec.KindError {
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		return
	}
	if m.Kind != codec.KindRequest {
		e := m.Err
		if e == nil {
			e = codec.NewError(codec.CodeInvalidRequest, "not a JSON-RPC request")
		}
		h.writeError(ctx, fasthttp.StatusBadRequest, e.ID, e)
		return
	}
	fail := func(status int, e *codec.Error) { h.writeError(ctx, status, m.ID, e) }

	// 1. The _meta shape. The common shape is read by one walk, which also yields the
	// request _meta that dispatch would otherwise decode again (versionFor); anything else
	// goes through sonic.
	// Everything this request keeps (params, the walk's results, the throwaway session,
	// the output) is one allocation.
	sc := new(statelessReq)
	p, rd := &sc.p, &sc.rd
	var meta *requestMeta
	if len(m.Params) > 0 {
		if fastStatelessParams(m.Params, p, rd) {
			meta = &rd.meta
		} else {
			*p = statelessParams{}
			if err := codec.Unmarshal(m.Params, p); err != nil {
				fail(fasthttp.StatusBadRequest, codec.NewError(codec.CodeInvalidParams, "invalid %s params: %v", snippet(m.Method), err))
				return
			}
		}
	}
	switch {
	case p.Meta == nil:
		fail(fasthttp.StatusBadRequest, codec.NewError(codec.CodeInvalidParams, "params._meta is required in protocol version %s (with %s and %s)", Version20260728, metaProtocolVersion, metaClientCapabilities))
		return
	case p.Meta.ProtocolVersion == nil:
		fail(fasthttp.StatusBadRequest, codec.NewError(codec.CodeInvalidParams, "params._meta[%q] is required", metaProtocolVersion))
		return
	case p.Meta.ClientCapabilities == nil:
		fail(fasthttp.StatusBadRequest, codec.NewError(codec.CodeInvalidParams, "params._meta[%q] is required", metaClientCapabilities))
		return
	}
	mv := *p.Meta.ProtocolVersion
	// 2. Header and body must agree.
	if hb := bytes.TrimSpace(ctx.Request.Header.Peek(hdrProtocol)); len(hb) > 0 && b2str(hb) != mv {
		hv := string(hb)
		fail(fasthttp.StatusBadRequest, codec.NewError(codeHeaderMismatch, "MCP-Protocol-Version header %q does not match params._meta protocol version %q", snippet(hv), snippet(mv)))
		return
	}
	// 3. A version we speak statelessly.
	if parseVersion(mv) != proto20260728 {
		fail(fasthttp.StatusBadRequest, codec.NewError(codeUnsupportedProtoVersn, "unsupported protocol version %q", snippet(mv)).
			WithData(map[string]any{"supported": supportedVersions(), "requested": mv}))
		return
	}
	// 4. The method.
	if methodsNotStateless[m.Method] || !h.srv.servesStateless(m.Method) {
		fail(fasthttp.StatusNotFound, codec.NewError(codec.CodeMethodNotFound, "method not found in protocol version %s: %q", Version20260728, snippet(m.Method)))
		return
	}
	// 5. Routing headers mirror the body.
	if e := checkRoutingHeaders(ctx, m.Method, p); e != nil {
		fail(fasthttp.StatusBadRequest, e)
		return
	}
	if m.Method == MethodToolsCall {
		if e := h.srv.checkParamHeaders(ctx, p); e != nil {
			fail(fasthttp.StatusBadRequest, e)
			return
		}
	}
	// 6. requestState must be one we minted.
	var state string
	if p.RequestState != nil {
		var ok bool
		if state, ok = h.srv.openState(*p.RequestState); !ok {
			fail(fasthttp.StatusBadRequest, codec.NewError(codec.CodeInvalidParams, "requestState failed verification: it was not issued by this server or was modified"))
			return
		}
	}

	ss := &sc.ss
	*ss = Session{srv: h.srv, out: discardOutput{}, transport: "http", version: proto20260728,
		initialized: true, ready: true, stateless: true,
		clientCaps: p.Meta.ClientCapabilities, clientInfo: p.Meta.ClientInfo, logLevel: p.Meta.LogLevel.severity()}
	out := &sc.out
	out.in = *edge
	out.setTraceHeaders(ctx)
	out.meta = meta
	if meta != nil && m.Method == MethodToolsCall {
		// The walk read name and arguments too; arguments are copied, as the call may
		// outlive the request body (a worker still running when the response streams).
		out.call = CallToolParams{Name: p.Name, Arguments: bytes.Clone(p.Arguments)}
		out.hasCall = true
	}
	rd.mrtr.state, rd.mrtr.hasState = state, p.RequestState != nil
	out.mrtr = &rd.mrtr
	if strings.HasPrefix(state, autoStatePrefix) {
		// A state statelessCall made: earlier rounds' answers, not the handler's own.
		out.mrtr.state = ""
		_ = codec.Unmarshal([]byte(state[len(autoStatePrefix):]), &out.mrtr.answers)
	}
	if len(p.InputResponses) > 0 {
		if out.mrtr.answers == nil {
			out.mrtr.answers = make(map[string]json.RawMessage, len(p.InputResponses))
		}
		for k, v := range p.InputResponses {
			out.mrtr.answers[k] = v
		}
	}
	h.srv.handleMessage(ss, m, out, &out.in)
	h.respond(ctx, out, nil, okJSON, okSSE, false, true, ss)
}

// statelessReq is what one stateless request keeps, allocated together: its params and
// what their walk read, its throwaway Session and its output.
type statelessReq struct {
	p   statelessParams
	rd  statelessRead
	ss  Session
	out postOutput
}

// servesStateless reports whether method is served in the stateless era.
func (s *Server) servesStateless(method string) bool { return s.method(method) != nil }

func supportedVersions() []string {
	return []string{Version20260728, Version20251125, Version20250618, Version20250326, Version20241105}
}

// checkRoutingHeaders validates Mcp-Method and Mcp-Name (SEP-2243): names are
// case-insensitive, values case-sensitive with surrounding whitespace ignored.
func checkRoutingHeaders(ctx *fasthttp.RequestCtx, method string, p *statelessParams) *codec.Error {
	hm := ctx.Request.Header.Peek(hdrMethod)
	if hm == nil {
		return codec.NewError(codeHeaderMismatch, "missing Mcp-Method header (want %q)", snippet(method))
	}
	if v := bytes.TrimSpace(hm); b2str(v) != method {
		return codec.NewError(codeHeaderMismatch, "Mcp-Method header %q does not match the body's method %q", snippet(string(v)), snippet(method))
	}
	var want string
	switch method {
	case MethodToolsCall, MethodPromptsGet:
		want = p.Name
	case MethodResourcesRead:
		want = p.URI
	case "tasks/get", "tasks/update", "tasks/cancel":
		want = p.TaskID
	default:
		return nil
	}
	hn := ctx.Request.Header.Peek(hdrName)
	if hn == nil {
		return codec.NewError(codeHeaderMismatch, "missing Mcp-Name header (want %q)", snippet(want))
	}
	if v := bytes.TrimSpace(hn); b2str(v) != want {
		return codec.NewError(codeHeaderMismatch, "Mcp-Name header %q does not match the body's %q", snippet(string(v)), snippet(want))
	}
	return nil
}

// paramHeader is a tools/call argument mirrored into an Mcp-Param-<Header> header: a
// property of the tool's input schema marked "x-mcp-header".
type paramHeader struct {
	prop, header string
}

// paramHeadersOf returns the properties of an input schema marked "x-mcp-header", sorted
// by property name (so a call with several bad headers always names the same one first);
// nil when there are none. Read once, when the tool is added.
func paramHeadersOf(schema json.RawMessage) []paramHeader {
	if !bytes.Contains(schema, []byte("x-mcp-header")) {
		return nil
	}
	var sch struct {
		Properties map[string]struct {
			Header string `json:"x-mcp-header"`
		} `json:"properties"`
	}
	if codec.Unmarshal(schema, &sch) != nil {
		return nil
	}
	var hs []paramHeader
	for prop, def := range sch.Properties {
		if def.Header != "" {
			hs = append(hs, paramHeader{prop: prop, header: def.Header})
		}
	}
	slices.SortFunc(hs, func(a, b paramHeader) int { return strings.Compare(a.prop, b.prop) })
	return hs
}

// checkParamHeaders validates Mcp-Param-<Name> headers of a tools/call whose input schema
// marks properties with "x-mcp-header": the header must be present when the argument is,
// decode (=?base64?…?= or literal) and equal the argument.
func (s *Server) checkParamHeaders(ctx *fasthttp.RequestCtx, p *statelessParams) *codec.Error {
	e, ok := s.tools.get(p.Name)
	if !ok || len(e.headers) == 0 {
		return nil
	}
	var args map[string]json.RawMessage
	if len(p.Arguments) > 0 {
		_ = codec.Unmarshal(p.Arguments, &args)
	}
	for _, def := range e.headers {
		prop := def.prop
		raw, has := args[prop]
		hv := ctx.Request.Header.Peek("Mcp-Param-" + def.header)
		if hv == nil {
			if has && string(raw) != "null" {
				return codec.NewError(codeHeaderMismatch, "missing Mcp-Param-%s header for argument %q", def.header, prop)
			}
			continue
		}
		val, ok := decodeParamHeader(strings.TrimSpace(string(hv)))
		if !ok {
			return codec.NewError(codeHeaderMismatch, "Mcp-Param-%s header is not valid (=?base64?…?= must hold valid base64)", def.header)
		}
		if !has {
			return codec.NewError(codeHeaderMismatch, "Mcp-Param-%s header given but argument %q is absent", def.header, prop)
		}
		if argString(raw) != val {
			return codec.NewError(codeHeaderMismatch, "Mcp-Param-%s header %q does not match argument %q", def.header, snippet(val), prop)
		}
	}
	return nil
}

// decodeParamHeader decodes "=?base64?<b64>?=" or returns a literal value as is.
func decodeParamHeader(v string) (string, bool) {
	const pre, suf = "=?base64?", "?="
	if len(v) >= len(pre)+len(suf) && strings.EqualFold(v[:len(pre)], pre) && strings.HasSuffix(v, suf) {
		b, err := base64.StdEncoding.Strict().DecodeString(v[len(pre) : len(v)-len(suf)])
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	return v, true
}

// argString renders a JSON argument as a header would carry it.
func argString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if codec.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// statelessStatus maps the error code of a stateless JSON reply to its HTTP status: the
// 2026-07-28 transport answers protocol errors with 4xx, and our admission codes with
// their own (codec's table: 401, 403, 413, 429, 503).
func statelessStatus(c codec.Code) int {
	switch c {
	case codec.CodeMethodNotFound:
		return fasthttp.StatusNotFound
	case codec.CodeInvalidParams, codec.CodeInvalidRequest, codec.CodeParseError, codeHeaderMismatch, codeMissingClientCap, codeUnsupportedProtoVersn:
		return fasthttp.StatusBadRequest
	}
	return c.HTTPStatus()
}

// sessionStatus maps the error code of a session-era JSON reply to its HTTP status. A
// session-era error travels in a 200 response, except the refusals of admission, which the
// MCP authorization spec and HTTP clients expect as statuses: 401 (with WWW-Authenticate),
// 403, 413, 429 and 503 (with Retry-After).
func sessionStatus(c codec.Code) int {
	switch c {
	case codec.CodeUnauthorized, codec.CodeBadSignature, codec.CodeForbidden, codec.CodeRateLimited,
		codec.CodeOverloaded, codec.CodeShuttingDown, codec.CodeMessageTooLarge:
		return c.HTTPStatus()
	}
	return fasthttp.StatusOK
}

// errorCode is codec.ErrorCode: the code of an encoded error reply.
func errorCode(msg []byte) (codec.Code, bool) { return codec.ErrorCode(msg) }

// ---- results of the stateless era ----------------------------------------------------

// cacheableMethods are the methods whose results carry ttlMs and cacheScope (SEP-2549).
var cacheableMethods = map[string]bool{
	MethodToolsList: true, MethodPromptsList: true, MethodResourcesList: true,
	MethodResourcesTemplates: true, MethodResourcesRead: true, MethodDiscover: true,
}

// stampResult adds resultType (and ttlMs/cacheScope for cacheable methods) to an encoded
// result message of a 2026-07-28 request, unless the result object already has a
// resultType member of its own (a nested one, such as a tool's structuredContent key,
// does not count). msg is {"jsonrpc":"2.0","id":…,"result":{…}} as codec.AppendResult
// writes it; the members are inserted in place (msg grows, so use the returned slice).
// private marks a result that depends on who asked (cacheScope "private").
func stampResult(msg []byte, method string, private bool) []byte {
	i := bytes.Index(msg, []byte(`"result":{`))
	if i < 0 {
		return msg
	}
	at := i + len(`"result":{`)
	if hasOwnMember(msg[at-1:], "resultType") {
		return msg
	}
	var arr [64]byte
	ins := append(arr[:0], `"resultType":"complete"`...)
	if cacheableMethods[method] {
		scope := "public"
		if private {
			scope = "private"
		}
		ins = append(ins, `,"ttlMs":0,"cacheScope":"`...)
		ins = append(ins, scope...)
		ins = append(ins, '"')
	}
	if at < len(msg) && msg[at] != '}' {
		ins = append(ins, ',')
	}
	n := len(msg)
	msg = append(msg, ins...)
	copy(msg[at+len(ins):], msg[at:n])
	copy(msg[at:], ins)
	return msg
}

// hasOwnMember reports whether the JSON object obj (obj[0] == '{', valid JSON as our
// encoder writes it) has a member named key at its top level; members of nested objects
// and arrays, and string values, do not count.
func hasOwnMember(obj []byte, key string) bool {
	depth := 0
	for i := 0; i < len(obj); i++ {
		switch obj[i] {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return false
			}
		case '"':
			start := i + 1
			i = start
			for i < len(obj) && obj[i] != '"' {
				if obj[i] == '\\' {
					i++
				}
				i++
			}
			if depth != 1 || i >= len(obj) {
				continue
			}
			// A string directly in the object is a key when a colon follows it.
			j := fastWS(obj, i+1)
			if j < len(obj) && obj[j] == ':' && string(obj[start:i]) == key {
				return true
			}
		}
	}
	return false
}

// ---- input-required results (multi round-trip requests, SEP-2322) -------------------

// InputRequest is one request for client input carried by an input-required result:
// Method is elicitation/create, sampling/createMessage or roots/list, Params its params.
type InputRequest struct {
	Method string `json:"method"`
	Params any    `json:"params"`
}

// InputRequired is returned by a handler, as its error, to answer a 2026-07-28 request
// with an input-required result: the client gathers the inputs and retries the same
// request with params.inputResponses (read them with Request.InputResponse) and the
// RequestState echoed (Request.RequestState). The state is signed by the server, so a
// modified one is refused before the handler runs.
type InputRequired struct {
	Requests map[string]InputRequest
	State    string
}

func (e *InputRequired) Error() string { return "server: input required" }

// inputRequiredResult is the wire form of InputRequired.
type inputRequiredResult struct {
	ResultType    string                  `json:"resultType"`
	InputRequests map[string]InputRequest `json:"inputRequests,omitempty"`
	RequestState  string                  `json:"requestState,omitempty"`
}

func (s *Server) inputRequiredResult(e *InputRequired) *inputRequiredResult {
	res := &inputRequiredResult{ResultType: "input_required", InputRequests: e.Requests}
	if e.State != "" || len(e.Requests) == 0 {
		res.RequestState = s.sealState(e.State)
	}
	return res
}

// mrtrInput is what a stateless request brought for MRTR.
type mrtrInput struct {
	state    string // verified requestState
	hasState bool

	// For handlers that call Request.Elicit/CreateMessage/ListRoots: the answers known so
	// far (earlier rounds' from the sealed state, plus this request's inputResponses) and
	// how many such calls the handler made in this run.
	mu      sync.Mutex
	answers map[string]json.RawMessage
	calls   int
}

// autoStatePrefix marks request states made by statelessCall (not by a handler).
const autoStatePrefix = "\x00mrtr:"

// statelessCall serves a server→client request made by a handler during a stateless
// request: the n-th call of a run is named "<method>#<n>"; if the client already answered
// it the answer is decoded into result, else the handler is stopped with an InputRequired
// whose state carries every answer so far, and the retry re-runs it from the start.
func statelessCall(out Output, method string, params, result any) error {
	o, _ := out.(*postOutput)
	if o == nil || o.mrtr == nil {
		return codec.NewError(codec.CodeInvalidRequest, "%s: a stateless request cannot call the client; return an input-required result", method)
	}
	m := o.mrtr
	m.mu.Lock()
	m.calls++
	key := method + "#" + strconv.Itoa(m.calls)
	raw, ok := m.answers[key]
	var sealed string
	if !ok {
		b, _ := codec.Marshal(m.answers)
		sealed = autoStatePrefix + string(b)
	}
	m.mu.Unlock()
	if ok {
		if result == nil {
			return nil
		}
		if err := codec.Unmarshal(raw, result); err != nil {
			return codec.NewError(codec.CodeInvalidParams, "inputResponses[%q] does not decode as the %s result: %v", key, method, err)
		}
		return nil
	}
	return &InputRequired{Requests: map[string]InputRequest{key: {Method: method, Params: params}}, State: sealed}
}

// inputParams is the MRTR part of params.
type inputParams struct {
	InputResponses map[string]json.RawMessage `json:"inputResponses"`
	RequestState   *string                    `json:"requestState"`
}

// InputResponses returns the raw inputResponses the client sent with this request (the
// retry of an input-required result), or nil.
func (r *Request) InputResponses() map[string]json.RawMessage {
	if !bytes.Contains(r.Params, []byte(`"inputResponses"`)) {
		return nil
	}
	var p inputParams
	if codec.Unmarshal(r.Params, &p) != nil {
		return nil
	}
	return p.InputResponses
}

// InputResponse decodes the input response under key into v and reports whether there
// was one that decoded.
func (r *Request) InputResponse(key string, v any) bool {
	raw, ok := r.InputResponses()[key]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return false
	}
	return codec.Unmarshal(raw, v) == nil
}

// RequestState returns the requestState the client echoed, as the handler set it in
// InputRequired.State (verified), or "".
func (r *Request) RequestState() string {
	if o, ok := r.out.(*postOutput); ok && o.mrtr != nil {
		return o.mrtr.state
	}
	if !bytes.Contains(r.Params, []byte(`"requestState"`)) {
		return ""
	}
	var p inputParams
	if codec.Unmarshal(r.Params, &p) != nil || p.RequestState == nil {
		return ""
	}
	st, _ := r.Session.srv.openState(*p.RequestState)
	return st
}

// ClientCapabilities returns the capabilities that apply to this request: the request's
// own _meta ones (stateless era) or the session's.
func (r *Request) ClientCapabilities() *ClientCapabilities {
	if r.meta != nil && r.meta.ClientCapabilities != nil {
		return r.meta.ClientCapabilities
	}
	return r.Session.ClientCapabilities()
}

// newStateKey returns the random key a Server seals request states with until
// SetStateKey gives it a shared one; it lives as long as the Server (states are
// short-lived retries of one request).
func newStateKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// SetStateKey makes s seal and verify 2026 requestState (input-required round trips) with
// key instead of its own random one, so that a fleet of nodes given the same key behind a
// round-robin load balancer verifies each other's states without any shared store. In
// cluster mode a configured key is also the cluster's (else the nodes agree on one through
// Redis). Call it before serving; an empty key is ignored.
func (s *Server) SetStateKey(key []byte) {
	if len(key) > 0 {
		s.stateKey = append([]byte(nil), key...)
	}
}

// sealState returns state with an HMAC-SHA256 tag: "<base64url(state)>.<base64url(tag)>".
// In cluster mode the key is the one the nodes share, so the retry may reach any node.
func (s *Server) sealState(state string) string {
	key := s.stateKey
	if cn := s.cluster; cn != nil {
		if k := cn.c.StateKey(); k != nil {
			key = k
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(state))
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(state)) + "." + enc.EncodeToString(mac.Sum(nil))
}

// openState verifies a sealed state and returns what the handler put in it.
func (s *Server) openState(sealed string) (string, bool) {
	i := strings.LastIndexByte(sealed, '.')
	if i < 0 {
		return "", false
	}
	enc := base64.RawURLEncoding
	body, err1 := enc.DecodeString(sealed[:i])
	tag, err2 := enc.DecodeString(sealed[i+1:])
	if err1 != nil || err2 != nil {
		return "", false
	}
	if !stateTagOK(s.stateKey, body, tag) {
		if cn := s.cluster; cn == nil || !cn.verifyState(body, tag) {
			return "", false
		}
	}
	return string(body), true
}

// resultOf turns the results that handlers return as errors (an input-required result,
// a created task) into results; other errors pass through.
func (s *Server) resultOf(res any, err error) (any, error) {
	var ir *InputRequired
	if errors.As(err, &ir) { // also when a handler wrapped what Elicit returned
		return s.inputRequiredResult(ir), nil
	}
	if tc, ok := err.(*taskCreated); ok {
		return tc.t.created_(), nil
	}
	return res, err
}
