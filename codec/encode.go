package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/bytedance/sonic/decoder"
	"github.com/bytedance/sonic/encoder"
)

// encOpts makes sonic's output match encoding/json's where it matters:
// sorted map keys, compacted and validated json.Marshaler output, invalid
// UTF-8 replaced by U+FFFD. HTML escaping is off (as json.Encoder with
// SetEscapeHTML(false)): MCP payloads are not embedded in HTML, and
// escaping <, >, & costs a second pass over every reply.
const encOpts = encoder.SortMapKeys | encoder.CompactMarshaler | encoder.ValidateString

// decOpts gives encoding/json semantics, with strings copied so that
// Unmarshal results never alias the input.
const decOpts = decoder.OptionCopyString | decoder.OptionValidateString

// RawJSON is raw, already-encoded JSON, embedded verbatim (after
// validation and compaction) by the encoders; it is json.RawMessage.
type RawJSON = json.RawMessage

func init() {
	// Compile sonic's encoders for the generic shapes codec itself meets
	// (error data, dynamic params) so the first request does not pay the JIT.
	_ = Pretouch(
		reflect.TypeFor[map[string]any](),
		reflect.TypeFor[[]any](),
		reflect.TypeFor[json.RawMessage](),
	)
}

// Pretouch compiles sonic's encoder and decoder for the given types ahead
// of use, so the first message of each type does not pay JIT compilation.
// Servers call it at start for their hot result and params types.
func Pretouch(types ...reflect.Type) error {
	for _, t := range types {
		if err := encoder.Pretouch(t); err != nil {
			return err
		}
		if err := decoder.Pretouch(t); err != nil {
			return err
		}
	}
	return nil
}

// header is the start of every envelope this package writes.
const header = `{"jsonrpc":"2.0"`

// appendID appends the id's JSON; absent ids are written as null.
func appendID(dst []byte, id ID) []byte {
	if id.kind == IDAbsent || id.kind == IDNull {
		return append(dst, "null"...)
	}
	return append(dst, id.raw...)
}

var tailPool = sync.Pool{New: func() any { return new([]byte) }}

// appendValue appends the sonic encoding of v to dst. Encoding into the
// spare capacity keeps sonic's UTF-8 check to the new bytes only.
func appendValue(dst []byte, v any) ([]byte, error) {
	// sonic keeps the *[]byte, so a local slice header would escape to the
	// heap on every call; pooled headers make this allocation-free.
	h := tailPool.Get().(*[]byte)
	*h = dst[len(dst):]
	err := encoder.EncodeInto(h, v, encOpts)
	tail := *h
	*h = nil
	tailPool.Put(h)
	if err != nil {
		return dst, err
	}
	n := len(dst)
	if len(tail) > 0 && cap(dst)-len(dst) >= len(tail) && &dst[:len(dst)+1][len(dst)] == &tail[0] {
		dst = dst[:len(dst)+len(tail)]
	} else {
		dst = append(dst, tail...)
	}
	return escapeLineSeps(dst, n), nil
}

// escapeLineSeps rewrites U+2028 and U+2029 in dst[from:] as \u2028 and
// \u2029, as encoding/json does even with HTML escaping off (sonic does
// not). In valid JSON they occur only inside strings, so a plain byte
// replacement is exact. The common case is one IndexByte scan.
func escapeLineSeps(dst []byte, from int) []byte {
	k := bytes.IndexByte(dst[from:], 0xE2)
	if k < 0 {
		return dst
	}
	var out []byte
	i := from + k
	last := from
	for ; i+2 < len(dst); i++ {
		if dst[i] == 0xE2 && dst[i+1] == 0x80 && (dst[i+2] == 0xA8 || dst[i+2] == 0xA9) {
			if out == nil {
				out = make([]byte, 0, len(dst)+16)
				out = append(out, dst[:from]...)
			}
			out = append(out, dst[last:i]...)
			out = append(out, '\\', 'u', '2', '0', '2', '8'+(dst[i+2]-0xA8))
			i += 2
			last = i + 1
		}
	}
	if out == nil {
		return dst
	}
	out = append(out, dst[last:]...)
	return append(dst[:from], out[from:]...)
}

// AppendResult appends {"jsonrpc":"2.0","id":…,"result":…} to dst, with
// result encoded as by Marshal (nil encodes as null). On error dst is
// returned unchanged (length-wise).
func AppendResult(dst []byte, id ID, result any) ([]byte, error) {
	n := len(dst)
	dst = append(dst, header...)
	dst = append(dst, `,"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	dst, err := appendValue(dst, result)
	if err != nil {
		return dst[:n], err
	}
	return append(dst, '}'), nil
}

// AppendResultRaw appends {"jsonrpc":"2.0","id":…,"result":raw} to dst.
// raw must be one valid JSON value (it is not checked); empty raw is written
// as null. It does not allocate beyond growing dst.
func AppendResultRaw(dst []byte, id ID, raw []byte) []byte {
	dst = append(dst, header...)
	dst = append(dst, `,"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	if len(raw) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, raw...)
	}
	return append(dst, '}')
}

// AppendError appends {"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…,"data":…}}
// to dst. An absent id is written as null. Data is omitted when nil or when
// it cannot be encoded (the error itself must still reach the peer). A nil e
// is written as an internal error. Without Data it does not allocate
// beyond growing dst.
func AppendError(dst []byte, id ID, e *Error) []byte {
	if e == nil {
		e = &Error{Code: CodeInternalError, Message: "internal error"}
	}
	dst = append(dst, header...)
	dst = append(dst, `,"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	if e.Data != nil {
		n := len(dst)
		dst = append(dst, `,"data":`...)
		var err error
		if dst, err = appendValue(dst, e.Data); err != nil {
			dst = dst[:n]
		}
	}
	return append(dst, '}', '}')
}

// ErrorCode returns the code of msg when it is an error response as AppendError writes it
// ({"jsonrpc":"2.0","id":…,"error":{"code":N,…}}), and false for anything else (a result,
// a notification, another encoder's layout). It reads only the envelope's head, so a
// result that quotes an error object somewhere inside is never mistaken for one: the
// HTTP transport uses it to choose the status of a reply it already encoded.
func ErrorCode(msg []byte) (Code, bool) {
	const idPrefix = header + `,"id":`
	if len(msg) < len(idPrefix) || string(msg[:len(idPrefix)]) != idPrefix {
		return 0, false
	}
	i := len(idPrefix)
	switch {
	case i < len(msg) && msg[i] == '"':
		i = skipString(msg, i)
	default:
		for i < len(msg) && msg[i] != ',' {
			i++
		}
	}
	const errPrefix = `,"error":{"code":`
	if len(msg)-i < len(errPrefix) || string(msg[i:i+len(errPrefix)]) != errPrefix {
		return 0, false
	}
	i += len(errPrefix)
	j := i
	if j < len(msg) && msg[j] == '-' {
		j++
	}
	for j < len(msg) && isDigit(msg[j]) {
		j++
	}
	n, err := strconv.Atoi(b2s(msg[i:j]))
	if err != nil {
		return 0, false
	}
	return Code(n), true
}

// appendCall writes a request (hasID) or notification envelope.
func appendCall(dst []byte, hasID bool, id ID, method string, params any) ([]byte, error) {
	n := len(dst)
	dst = append(dst, header...)
	if hasID {
		dst = append(dst, `,"id":`...)
		dst = appendID(dst, id)
	}
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, method)
	if params != nil {
		m := len(dst)
		dst = append(dst, `,"params":`...)
		p := len(dst)
		var err error
		if dst, err = appendValue(dst, params); err != nil {
			return dst[:n], err
		}
		// A typed nil (nil map, nil pointer) encodes as null, which is not
		// valid params: leave params out instead.
		if string(dst[p:]) == "null" {
			dst = dst[:m]
		}
	}
	return append(dst, '}'), nil
}

// AppendRequest appends {"jsonrpc":"2.0","id":…,"method":…,"params":…} to
// dst. params is encoded as by Marshal and left out when nil or when it
// encodes as null; it should encode as an object or array. On error dst is
// returned unchanged (length-wise).
func AppendRequest(dst []byte, id ID, method string, params any) ([]byte, error) {
	return appendCall(dst, true, id, method, params)
}

// AppendNotification appends {"jsonrpc":"2.0","method":…,"params":…} to
// dst, with params as for AppendRequest.
func AppendNotification(dst []byte, method string, params any) ([]byte, error) {
	return appendCall(dst, false, ID{}, method, params)
}

// Marshal returns the JSON encoding of v, as encoding/json.Marshal would
// with HTML escaping off: json tags, omitempty, json.Marshaler and
// json.RawMessage (compacted) are honoured, map keys are sorted, invalid
// UTF-8 in strings becomes U+FFFD.
func Marshal(v any) ([]byte, error) {
	b, err := encoder.Encode(v, encOpts)
	if err != nil {
		return nil, err
	}
	return escapeLineSeps(b, 0), nil
}

// MarshalAppend appends the JSON encoding of v (as Marshal) to dst.
// On error dst is returned unchanged (length-wise).
func MarshalAppend(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v)
}

// Unmarshal decodes the JSON data into v with encoding/json semantics (json
// tags, case-insensitive field match, json.Unmarshaler, json.RawMessage).
// Decoded strings, raw messages, map keys and numbers are copies: the
// result is safe to keep after data is reused. Errors say what failed and
// at which offset; they do not wrap sonic's types.
func Unmarshal(data []byte, v any) error {
	return unmarshal(data, v, decOpts)
}

// UnmarshalStrict is Unmarshal but also refuses object members that match
// no field of the destination struct.
func UnmarshalStrict(data []byte, v any) error {
	return unmarshal(data, v, decOpts|decoder.OptionDisableUnknown)
}

func unmarshal(data []byte, v any, opts decoder.Options) error {
	// No copy of data: with OptionCopyString sonic copies every string,
	// raw message, map key and number it stores, so results never alias
	// data (TestUnmarshal checks it).
	dec := decoder.NewDecoder(b2s(data))
	dec.SetOptions(opts)
	err := dec.Decode(v)
	if err == nil {
		err = dec.CheckTrailings()
	}
	if err != nil {
		// sonic's errors keep the source (which aliases data) and print a
		// multi-line excerpt: keep the first line, computed now.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return errors.New("codec: unmarshal: " + strings.TrimSpace(msg))
	}
	return nil
}

// validMaxDepth is the nesting bound of Valid, as encoding/json's.
const validMaxDepth = 10000

// Valid reports whether data is one valid JSON value in valid UTF-8,
// nested at most 10000 deep (encoding/json's own limit).
func Valid(data []byte) bool {
	return validate(data, validMaxDepth) == nil
}
