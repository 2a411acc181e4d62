package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// nestDepth returns the deepest nesting of the JSON text b (brackets
// outside strings); b must be valid JSON.
func nestDepth(b []byte) int {
	depth, max := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i) - 1
		case '{', '[':
			depth++
			max = maxInt(max, depth)
		case '}', ']':
			depth--
		}
	}
	return max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	if b == nil {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.String()
}

// reencode writes m back to the wire.
func reencode(t *testing.T, m *Message) []byte {
	t.Helper()
	var (
		out []byte
		err error
	)
	var params any
	if m.Params != nil {
		params = RawJSON(m.Params)
	}
	switch m.Kind {
	case KindRequest:
		out, err = AppendRequest(nil, m.ID, m.Method, params)
	case KindNotification:
		out, err = AppendNotification(nil, m.Method, params)
	case KindResponse:
		out = AppendResultRaw(nil, m.ID, m.Result)
	case KindError:
		e := &Error{Code: m.ErrCode, Message: m.ErrMessage}
		if m.ErrData != nil {
			e.Data = RawJSON(m.ErrData)
		}
		out = AppendError(nil, m.ID, e)
	default:
		t.Fatalf("reencode of kind %v", m.Kind)
	}
	if err != nil {
		t.Fatalf("re-encode %v: %v", m.Kind, err)
	}
	return out
}

// FuzzDecode checks that Decode never panics, agrees with encoding/json on
// what is JSON, and that every message it accepts survives encode → decode.
// Seeds: testdata/fuzz/FuzzDecode (real MCP traffic and known-bad frames).
//
//	go test -run=^$ -fuzz=FuzzDecode -fuzztime=60s ./codec/
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Decoder
		msgs, batch, err := d.Decode(b, nil)
		stdValid := json.Valid(b)
		// Only check depth on valid JSON: nestDepth assumes it.
		parseable := stdValid && utf8.Valid(b) && nestDepth(b) <= DefaultMaxDepth

		if v := Valid(b); v != (stdValid && utf8.Valid(b) && nestDepth(b) <= validMaxDepth) {
			t.Fatalf("Valid = %v, json.Valid = %v on %q", v, stdValid, b)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			switch e.Code {
			case CodeParseError:
				if parseable {
					t.Fatalf("parse error %q on JSON that encoding/json accepts: %q", e.Message, b)
				}
			case CodeInvalidRequest:
				if !parseable {
					t.Fatalf("invalid request %q on input that is not parseable: %q", e.Message, b)
				}
			default:
				t.Fatalf("unexpected code %v", e.Code)
			}
			if e.ID.Kind() == IDAbsent {
				t.Fatal("error id is absent; want NullID or the message's id")
			}
			if len(msgs) != 0 {
				t.Fatalf("%d messages with error", len(msgs))
			}
			_ = AppendError(nil, e.ID, e)
			return
		}
		// A tight MaxDepth must refuse exactly the frames nested deeper.
		if stdValid && utf8.Valid(b) {
			shallow := Decoder{MaxDepth: 4}
			_, _, err := shallow.Decode(b, nil)
			if (err != nil && err.(*Error).Code == CodeParseError) != (nestDepth(b) > 4) {
				t.Fatalf("MaxDepth 4: err %v at depth %d", err, nestDepth(b))
			}
		}
		if !parseable {
			t.Fatalf("accepted input that encoding/json (or UTF-8/depth) refuses: %q", b)
		}
		if !batch && (len(msgs) != 1 || msgs[0].Kind == KindInvalid) {
			t.Fatalf("single frame gave %d messages", len(msgs))
		}
		for i := range msgs {
			m := &msgs[i]
			if m.Kind == KindInvalid {
				if m.Err == nil || m.Err.Code != CodeInvalidRequest {
					t.Fatalf("invalid element without InvalidRequest error: %+v", m.Err)
				}
				continue
			}
			_ = m.ID.Key()
			_ = m.ID.String()
			wire := reencode(t, m)
			if !json.Valid(wire) || !utf8.Valid(wire) {
				t.Fatalf("re-encoded message is not valid JSON: %q", wire)
			}
			again, batch2, err := d.Decode(wire, nil)
			if err != nil || batch2 || len(again) != 1 {
				t.Fatalf("decode of re-encoded %q: %v", wire, err)
			}
			r := &again[0]
			if r.Kind != m.Kind || !r.ID.Equal(m.ID) || r.ID.Key() != m.ID.Key() || r.Method != m.Method ||
				compact(t, r.Params) != compact(t, m.Params) || !bytes.Equal(r.Result, m.Result) ||
				r.ErrCode != m.ErrCode || r.ErrMessage != m.ErrMessage || compact(t, r.ErrData) != compact(t, m.ErrData) {
				t.Fatalf("round trip changed the message:\n in  %q\n out %q", b, wire)
			}
		}
	})
}
