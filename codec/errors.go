package codec

import (
	"fmt"
	"net/http"
)

// Code is a JSON-RPC 2.0 error code. All codes the project uses are listed
// here, in one table, each with a name (see [Code.Name]) and an HTTP status
// (see [Code.HTTPStatus]).
//
// Ranges: -32768…-32000 is reserved by JSON-RPC. The standard codes are
// -32700 and -32600…-32603. MCP and its SDKs use -32000…-32002 and -32042.
// This implementation uses -32003…-32019; the 2026 MCP specification reserves
// -32020…-32099, so codes there are never invented here.
type Code int

const (
	// CodeParseError (-32700): the frame is not JSON, is not valid UTF-8,
	// nests deeper than the decoder's MaxDepth, or has trailing bytes.
	CodeParseError Code = -32700
	// CodeInvalidRequest (-32600): the frame is JSON but not a valid
	// JSON-RPC 2.0 message (missing "jsonrpc":"2.0", bad id, duplicate keys, …).
	CodeInvalidRequest Code = -32600
	// CodeMethodNotFound (-32601): no handler for the request's method.
	CodeMethodNotFound Code = -32601
	// CodeInvalidParams (-32602): params do not fit the method.
	CodeInvalidParams Code = -32602
	// CodeInternalError (-32603): the server failed; not the client's fault.
	CodeInternalError Code = -32603

	// CodeConnectionClosed (-32000): the connection closed before a reply
	// (MCP SDK convention).
	CodeConnectionClosed Code = -32000
	// CodeRequestTimeout (-32001): the request did not complete in time
	// (MCP SDK convention).
	CodeRequestTimeout Code = -32001
	// CodeResourceNotFound (-32002): resources/read named an unknown URI
	// (MCP specification).
	CodeResourceNotFound Code = -32002

	// CodeRateLimited (-32003): the client exceeded its rate limit; data
	// carries the limit and retryAfterMs.
	CodeRateLimited Code = -32003
	// CodeOverloaded (-32004): the memory guard or worker pool refuses new
	// work for now; retry later.
	CodeOverloaded Code = -32004
	// CodeMessageTooLarge (-32005): an incoming message is over the size
	// limit; data carries the limit.
	CodeMessageTooLarge Code = -32005
	// CodeUnauthorized (-32006): no or bad credentials.
	CodeUnauthorized Code = -32006
	// CodeForbidden (-32007): credentials are good but do not allow this.
	CodeForbidden Code = -32007
	// CodeNotInitialized (-32008): a session-era request came before
	// initialize completed.
	CodeNotInitialized Code = -32008
	// CodeRequestCancelled (-32009): the request was cancelled
	// (notifications/cancelled or shutdown of its context).
	CodeRequestCancelled Code = -32009
	// CodeSessionNotFound (-32010): the Mcp-Session-Id is unknown or expired.
	CodeSessionNotFound Code = -32010
	// CodeBadSignature (-32011): a signed request or token failed
	// verification.
	CodeBadSignature Code = -32011
	// CodeResponseTooLarge (-32012): the reply would exceed the response
	// size limit; data carries the limit.
	CodeResponseTooLarge Code = -32012
	// CodeShuttingDown (-32013): the server is draining and takes no new work.
	CodeShuttingDown Code = -32013

	// CodeHeaderMismatch (-32020): an HTTP header (MCP-Protocol-Version,
	// Mcp-Method, Mcp-Name, Mcp-Param-*) disagrees with the body or is
	// missing (MCP 2026-07-28).
	CodeHeaderMismatch Code = -32020
	// CodeMissingClientCapability (-32021): the request needs a client
	// capability the client did not declare; data.requiredCapabilities
	// names it (MCP 2026-07-28).
	CodeMissingClientCapability Code = -32021
	// CodeUnsupportedProtocolVersion (-32022): the request's protocol version
	// is not served; data carries supported and requested (MCP 2026-07-28).
	CodeUnsupportedProtocolVersion Code = -32022

	// CodeURLElicitationRequired (-32042): the request needs the user to
	// complete a URL elicitation first (MCP specification).
	CodeURLElicitationRequired Code = -32042
)

// codeInfo is one row of the table.
type codeInfo struct {
	name   string
	status int
}

// codeTable is the one table of codes: name (metric label) and HTTP status.
var codeTable = map[Code]codeInfo{
	CodeParseError:                 {"parse_error", http.StatusBadRequest},
	CodeInvalidRequest:             {"invalid_request", http.StatusBadRequest},
	CodeMethodNotFound:             {"method_not_found", http.StatusOK},
	CodeInvalidParams:              {"invalid_params", http.StatusOK},
	CodeInternalError:              {"internal_error", http.StatusOK},
	CodeConnectionClosed:           {"connection_closed", http.StatusOK},
	CodeRequestTimeout:             {"request_timeout", http.StatusOK},
	CodeResourceNotFound:           {"resource_not_found", http.StatusOK},
	CodeRateLimited:                {"rate_limited", http.StatusTooManyRequests},
	CodeOverloaded:                 {"overloaded", http.StatusServiceUnavailable},
	CodeMessageTooLarge:            {"message_too_large", http.StatusRequestEntityTooLarge},
	CodeUnauthorized:               {"unauthorized", http.StatusUnauthorized},
	CodeForbidden:                  {"forbidden", http.StatusForbidden},
	CodeNotInitialized:             {"not_initialized", http.StatusOK},
	CodeRequestCancelled:           {"request_cancelled", http.StatusOK},
	CodeSessionNotFound:            {"session_not_found", http.StatusNotFound},
	CodeBadSignature:               {"bad_signature", http.StatusUnauthorized},
	CodeResponseTooLarge:           {"response_too_large", http.StatusRequestEntityTooLarge},
	CodeShuttingDown:               {"shutting_down", http.StatusServiceUnavailable},
	CodeHeaderMismatch:             {"header_mismatch", http.StatusBadRequest},
	CodeMissingClientCapability:    {"missing_client_capability", http.StatusBadRequest},
	CodeUnsupportedProtocolVersion: {"unsupported_protocol_version", http.StatusBadRequest},
	CodeURLElicitationRequired:     {"url_elicitation_required", http.StatusOK},
}

// Name returns the code's snake_case name, used as the `code` label of
// erlmcp_errors_total. Codes not in the table return "other", so the label
// set stays bounded whatever a peer sends.
func (c Code) Name() string {
	if i, ok := codeTable[c]; ok {
		return i.name
	}
	return "other"
}

// HTTPStatus returns the HTTP status a Streamable HTTP reply carrying only
// this error should use: 400 for parse/invalid request, 401, 403, 404 (session
// not found), 413 (too large), 429 (rate limited), 503 (overloaded, shutting
// down), and 200 for everything else (the error travels in the JSON-RPC body).
func (c Code) HTTPStatus() int {
	if i, ok := codeTable[c]; ok {
		return i.status
	}
	return http.StatusOK
}

// String returns the name and number, e.g. "rate_limited(-32003)".
func (c Code) String() string {
	return fmt.Sprintf("%s(%d)", c.Name(), int(c))
}

// Error is a JSON-RPC error object. It implements error; [Error.Is] compares
// codes only, so errors.Is(err, &Error{Code: CodeRateLimited}) matches any
// rate-limit error.
//
// An *Error is not safe for concurrent mutation; build it, then share it.
type Error struct {
	// Code is the JSON-RPC error code.
	Code Code
	// Message is a short human sentence: what failed, with which value.
	Message string
	// Data is encoded as the "data" member when non-nil (any value Marshal
	// accepts; a []byte holding JSON is embedded verbatim via [RawJSON]).
	Data any
	// ID is the id of the offending message when known (NullID when the
	// decoder could not tell). It is not encoded; AppendError takes the id
	// to answer explicitly. It may alias the decoded input: Clone it to keep it.
	ID ID
}

// NewError returns an *Error with the given code and a message formatted
// as by fmt.Sprintf (so a literal percent sign is written %%).
func NewError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithData sets e.Data to d and returns e, for chaining:
//
//	codec.NewError(codec.CodeRateLimited, "rate limit %d/s exceeded", n).WithData(map[string]any{"retryAfterMs": 250})
func (e *Error) WithData(d any) *Error {
	e.Data = d
	return e
}

// Error returns "jsonrpc <name>(<code>): <message>".
func (e *Error) Error() string {
	return "jsonrpc " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}
