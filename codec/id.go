package codec

import (
	"strconv"
)

// IDKind tells what kind of JSON value a message id is.
type IDKind uint8

const (
	// IDAbsent means the message has no "id" member (a notification).
	IDAbsent IDKind = iota
	// IDNull means "id":null (allowed only in responses).
	IDNull
	// IDString means the id is a JSON string.
	IDString
	// IDNumber means the id is a JSON integer (no fraction, no exponent).
	IDNumber
)

// String returns "absent", "null", "string" or "number".
func (k IDKind) String() string {
	switch k {
	case IDAbsent:
		return "absent"
	case IDNull:
		return "null"
	case IDString:
		return "string"
	case IDNumber:
		return "number"
	}
	return "IDKind(" + strconv.Itoa(int(k)) + ")"
}

// ID is a JSON-RPC id kept as its raw JSON text (`"abc"`, `42`). An ID from
// [Decoder.Decode] aliases the decoded input and is valid until that buffer is
// modified or released; call [ID.Clone] to keep it longer (cancellation and
// correlation maps should use [ID.Key]).
//
// The zero ID is IDAbsent. IDs are values; copy them freely. Compare with
// [ID.Equal] (two ids are equal when their kinds and JSON values are).
type ID struct {
	kind IDKind
	raw  []byte // JSON text; nil for IDAbsent and IDNull
}

// NullID is the id null, used to answer a message whose id is unknown.
var NullID = ID{kind: IDNull}

var nullJSON = []byte("null")

// StringID returns a string id; s is JSON-escaped.
func StringID(s string) ID {
	return ID{kind: IDString, raw: appendString(make([]byte, 0, len(s)+2), s)}
}

// IntID returns a number id.
func IntID(n int64) ID {
	return ID{kind: IDNumber, raw: strconv.AppendInt(nil, n, 10)}
}

// Kind returns the id's kind.
func (id ID) Kind() IDKind { return id.kind }

// Raw returns the raw JSON text of the id: `"abc"` or `42`; `null` for
// IDNull; nil for IDAbsent. The result must not be modified.
func (id ID) Raw() []byte {
	switch id.kind {
	case IDNull:
		return nullJSON
	case IDAbsent:
		return nil
	}
	return id.raw
}

// Clone returns a copy of id that owns its bytes.
func (id ID) Clone() ID {
	if id.raw != nil {
		id.raw = append([]byte(nil), id.raw...)
	}
	return id
}

// Key returns a map key for id that is equal for equal ids whatever their
// spelling (`"a"` and `"\u0061"` give the same key; `-0` and `0` too): one
// kind byte followed by the decoded string or the integer text. It allocates
// and does not alias the input.
func (id ID) Key() string {
	switch id.kind {
	case IDString:
		s := unquote(id.raw)
		b := make([]byte, 0, 1+len(s))
		b = append(b, 's')
		b = append(b, s...)
		return string(b)
	case IDNumber:
		t := id.raw
		if len(t) == 2 && t[0] == '-' && t[1] == '0' {
			t = t[1:]
		}
		b := make([]byte, 0, 1+len(t))
		b = append(b, 'n')
		b = append(b, t...)
		return string(b)
	case IDNull:
		return "z"
	}
	return ""
}

// Equal reports whether id and o are the same id (same kind and value).
func (id ID) Equal(o ID) bool {
	if id.kind != o.kind {
		return false
	}
	if string(id.raw) == string(o.raw) {
		return true
	}
	return id.Key() == o.Key()
}

// Str returns the decoded string of a string id (it may alias the input,
// like Message.Method), and whether id is one.
func (id ID) Str() (string, bool) {
	if id.kind != IDString {
		return "", false
	}
	return unquote(id.raw), true
}

// Int returns the value of a number id and whether id is a number that fits
// an int64.
func (id ID) Int() (int64, bool) {
	if id.kind != IDNumber {
		return 0, false
	}
	n, err := strconv.ParseInt(b2s(id.raw), 10, 64)
	return n, err == nil
}

// String returns a human form for logs: `"abc"`, `42`, `null` or `<absent>`.
func (id ID) String() string {
	if id.kind == IDAbsent {
		return "<absent>"
	}
	return string(id.Raw())
}
