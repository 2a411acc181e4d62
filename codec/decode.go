package codec

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxDepth is the nesting bound a zero Decoder applies to a whole
// frame (a batch counts as one level). MCP messages nest a few levels;
// tool arguments rarely more than ten. 128 keeps the worst case cheap.
const DefaultMaxDepth = 128

// Kind is the kind of a decoded message.
type Kind uint8

const (
	// KindInvalid marks a batch element that is not a valid JSON-RPC 2.0
	// message; its Message.Err says why. It is the zero Kind.
	KindInvalid Kind = iota
	// KindRequest is a message with a method and an id.
	KindRequest
	// KindNotification is a message with a method and no id.
	KindNotification
	// KindResponse is a success response: id and result.
	KindResponse
	// KindError is an error response: id and error.
	KindError
)

// String returns "invalid", "request", "notification", "response" or "error".
func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindError:
		return "error"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Message is one decoded JSON-RPC envelope.
//
// Params, Result and ErrData are raw JSON (nil when absent). They, ID, and
// the strings Method and ErrMessage alias the decoded input (unless the
// JSON string had escapes, in which case the string is a fresh copy): all
// are valid until the input buffer is modified or released. Copy what must
// outlive it (ID.Clone, strings.Clone, bytes.Clone).
type Message struct {
	// Kind is what the message is; KindInvalid only inside batches.
	Kind Kind
	// ID is the id; IDAbsent for notifications.
	ID ID
	// Method is the method of a request or notification.
	Method string
	// Params is the raw params object or array, nil when absent.
	Params []byte
	// Result is the raw result of a KindResponse.
	Result []byte
	// ErrCode is the error code of a KindError.
	ErrCode Code
	// ErrMessage is the error message of a KindError.
	ErrMessage string
	// ErrData is the raw error data of a KindError, nil when absent.
	ErrData []byte
	// Err says why a batch element is KindInvalid; nil otherwise. Err.ID is
	// the element's id when it could be read, else NullID.
	Err *Error
}

// Decoder decodes JSON-RPC 2.0 frames. Its zero value uses the defaults.
// A Decoder has no mutable state: one value is safe for concurrent use.
type Decoder struct {
	// MaxDepth bounds the nesting of a whole frame (objects and arrays,
	// a batch array included). If zero or negative, DefaultMaxDepth.
	MaxDepth int
}

// Decode decodes one frame: a single message or a batch (JSON array).
// It appends the messages to msgs[:0] and returns that slice, so a caller
// that keeps msgs between calls decodes without allocating. The messages
// alias b: they are valid until b is modified or released.
//
// A frame that is not JSON, not valid UTF-8, nested deeper than MaxDepth or
// followed by anything but whitespace fails with a *Error of CodeParseError.
// A single message that is JSON but not a JSON-RPC 2.0 message fails with
// CodeInvalidRequest; Error.ID is its id when readable, else NullID, so the
// caller can answer it. On failure out is empty.
//
// In a batch each element is checked on its own: a bad element becomes a
// Message of KindInvalid with Message.Err set, and err stays nil. An empty
// batch `[]` fails with CodeInvalidRequest.
func (d *Decoder) Decode(b []byte, msgs []Message) (out []Message, batch bool, err error) {
	out = msgs[:0]
	maxDepth := DefaultMaxDepth
	if d != nil && d.MaxDepth > 0 {
		maxDepth = d.MaxDepth
	}
	if e := validate(b, maxDepth); e != nil {
		return out, false, e
	}
	i := skipWS(b, 0)
	if b[i] != '[' {
		out = append(out, Message{})
		if _, e := decodeMessage(b[i:], &out[0]); e != nil {
			return out[:0], false, e
		}
		return out, false, nil
	}
	i = skipWS(b, i+1)
	if b[i] == ']' {
		return out, true, &Error{Code: CodeInvalidRequest, Message: "empty batch", ID: NullID}
	}
	for {
		out = append(out, Message{})
		m := &out[len(out)-1]
		n, e := decodeMessage(b[i:], m)
		if e != nil {
			*m = Message{Kind: KindInvalid, ID: e.ID, Err: e}
		}
		i = skipWS(b, i+n)
		if b[i] == ']' {
			return out, true, nil
		}
		i = skipWS(b, i+1) // ','
	}
}

// Envelope member bits.
const (
	hasJSONRPC = 1 << iota
	hasID
	hasMethod
	hasParams
	hasResult
	hasError
)

func invalid(id ID, format string, args ...any) *Error {
	if id.kind == IDAbsent {
		id = NullID
	}
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...), ID: id}
}

// quoteRaw shows a raw JSON value (already validated, so printable UTF-8)
// in a message, cut to about snippetMax bytes at a rune boundary.
func quoteRaw(v []byte) string {
	if v == nil {
		return "nothing"
	}
	if len(v) <= snippetMax {
		return string(v)
	}
	n := snippetMax
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return string(v[:n]) + "…"
}

// objectMembers calls f for each member of the validated object starting
// at b[0] == '{' with the raw key (quotes included) and raw value, and
// returns the index after the closing '}'. It stops at the first error f
// returns, and then returns -1.
func objectMembers(b []byte, f func(key, val []byte) *Error) (int, *Error) {
	i := skipWS(b, 1)
	if b[i] == '}' {
		return i + 1, nil
	}
	for {
		kEnd := skipString(b, i)
		key := b[i:kEnd]
		i = skipWS(b, kEnd)
		i = skipWS(b, i+1) // ':'
		vEnd := skipValue(b, i)
		if e := f(key, b[i:vEnd]); e != nil {
			return -1, e
		}
		i = skipWS(b, vEnd)
		if b[i] == '}' {
			return i + 1, nil
		}
		i = skipWS(b, i+1) // ','
	}
}

// keyName returns the decoded key without quotes (aliasing when unescaped).
func keyName(key []byte) string {
	for _, c := range key[1 : len(key)-1] {
		if c == '\\' {
			return unquote(key)
		}
	}
	return b2s(key[1 : len(key)-1])
}

// isInteger reports whether the validated number v has no fraction or exponent.
func isInteger(v []byte) bool {
	for _, c := range v {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// decodeMessage decodes the validated JSON value at the start of b into m
// and returns the length of that value. It works on the bytes directly
// rather than through sonic: b has been validated already, and walking the
// top-level members while checking duplicates and absent-vs-null costs less
// than a second parse (see BenchmarkEnvelope).
func decodeMessage(b []byte, m *Message) (int, *Error) {
	end := -1
	e := decodeEnvelope(b, m, &end)
	if end < 0 {
		end = skipValue(b, 0)
	}
	return end, e
}

// decodeEnvelope does decodeMessage's work; it sets *end when it walked the
// whole object.
func decodeEnvelope(b []byte, m *Message, end *int) *Error {
	*m = Message{}
	if b[0] != '{' {
		return invalid(NullID, "message is not a JSON object: %s", quoteRaw(b[:skipValue(b, 0)]))
	}
	var (
		seen                               int
		jsonrpc, id, method, params, resul []byte
		errObj                             []byte
		others                             [8]string
		nOthers                            int
		moreOthers                         map[string]struct{} // past 8 unknown members: keeps the duplicate check linear
	)
	var e *Error
	*end, e = objectMembers(b, func(key, val []byte) *Error {
		name := keyName(key)
		var bit int
		switch name {
		case "jsonrpc":
			bit, jsonrpc = hasJSONRPC, val
		case "id":
			bit, id = hasID, val
		case "method":
			bit, method = hasMethod, val
		case "params":
			bit, params = hasParams, val
		case "result":
			bit, resul = hasResult, val
		case "error":
			bit, errObj = hasError, val
		default:
			for _, o := range others[:nOthers] {
				if o == name {
					return invalid(NullID, "duplicate member %s", quoteRaw(key))
				}
			}
			if nOthers < len(others) {
				others[nOthers] = name
				nOthers++
				return nil
			}
			if moreOthers == nil {
				moreOthers = make(map[string]struct{})
			}
			if _, dup := moreOthers[name]; dup {
				return invalid(NullID, "duplicate member %s", quoteRaw(key))
			}
			moreOthers[name] = struct{}{}
			return nil
		}
		if seen&bit != 0 {
			return invalid(NullID, "duplicate member %s", quoteRaw(key))
		}
		seen |= bit
		return nil
	})

	// The id first, so later errors can carry it.
	if seen&hasID != 0 {
		switch c := id[0]; {
		case c == '"':
			m.ID = ID{kind: IDString, raw: id}
		case c == 'n':
			m.ID = NullID
		case c == '-' || isDigit(c):
			if !isInteger(id) {
				return invalid(NullID, "id must be a string or an integer, got %s", quoteRaw(id))
			}
			m.ID = ID{kind: IDNumber, raw: id}
		default:
			return invalid(NullID, "id must be a string or an integer, got %s", quoteRaw(id))
		}
	}
	if e != nil {
		e.ID = m.ID
		if e.ID.kind == IDAbsent {
			e.ID = NullID
		}
		return e
	}
	if seen&hasJSONRPC == 0 {
		return invalid(m.ID, `missing "jsonrpc":"2.0"`)
	}
	if string(jsonrpc) != `"2.0"` && (jsonrpc[0] != '"' || unquote(jsonrpc) != "2.0") {
		return invalid(m.ID, `"jsonrpc" must be "2.0", got %s`, quoteRaw(jsonrpc))
	}

	switch {
	case seen&hasMethod != 0:
		if seen&(hasResult|hasError) != 0 {
			return invalid(m.ID, "message has both method and result/error")
		}
		if method[0] != '"' {
			return invalid(m.ID, "method must be a string, got %s", quoteRaw(method))
		}
		m.Method = keyName(method)
		if seen&hasParams != 0 {
			if params[0] != '{' && params[0] != '[' {
				return invalid(m.ID, "params must be an object or an array, got %s", quoteRaw(params))
			}
			m.Params = params
		}
		switch m.ID.kind {
		case IDAbsent:
			m.Kind = KindNotification
		case IDNull:
			return invalid(NullID, "request id must not be null (method %s)", quoteRaw(method))
		default:
			m.Kind = KindRequest
		}
		return nil
	case seen&hasResult != 0 && seen&hasError != 0:
		return invalid(m.ID, "response has both result and error")
	case seen&(hasResult|hasError) != 0:
		if m.ID.kind == IDAbsent {
			return invalid(NullID, "response has no id")
		}
		if seen&hasResult != 0 {
			m.Kind = KindResponse
			m.Result = resul
			return nil
		}
		return decodeErrorObject(errObj, m)
	}
	return invalid(m.ID, "message has neither method nor result/error")
}

// decodeErrorObject fills m from the validated error member v.
func decodeErrorObject(v []byte, m *Message) *Error {
	if v[0] != '{' {
		return invalid(m.ID, "error must be an object, got %s", quoteRaw(v))
	}
	var code, msg []byte
	_, e := objectMembers(v, func(key, val []byte) *Error {
		switch keyName(key) {
		case "code":
			if code != nil {
				return invalid(m.ID, `duplicate member "code" in error`)
			}
			code = val
		case "message":
			if msg != nil {
				return invalid(m.ID, `duplicate member "message" in error`)
			}
			msg = val
		case "data":
			if m.ErrData != nil {
				return invalid(m.ID, `duplicate member "data" in error`)
			}
			m.ErrData = val
		}
		return nil
	})
	if e != nil {
		return e
	}
	if code == nil {
		return invalid(m.ID, "error has no code")
	}
	if !(code[0] == '-' || isDigit(code[0])) || !isInteger(code) {
		return invalid(m.ID, "error code must be an integer, got %s", quoteRaw(code))
	}
	n, err := strconv.ParseInt(b2s(code), 10, 32)
	if err != nil {
		return invalid(m.ID, "error code out of range: %s", quoteRaw(code))
	}
	if msg == nil || msg[0] != '"' {
		return invalid(m.ID, "error message must be a string, got %s", quoteRaw(msg))
	}
	m.Kind = KindError
	m.ErrCode = Code(n)
	m.ErrMessage = keyName(msg)
	return nil
}
