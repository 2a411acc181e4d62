package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendEnvelopes(t *testing.T) {
	f := func(name string, got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("%s:\n  got %s\nwant %s", name, got, want)
		}
		got = bytes.TrimPrefix(got, []byte("prev\n"))
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Errorf("%s: invalid JSON %s", name, got)
		}
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f("result", must(AppendResult(nil, IntID(1), map[string]any{"b": 1, "a": []int{}})), `{"jsonrpc":"2.0","id":1,"result":{"a":[],"b":1}}`)
	f("result nil", must(AppendResult(nil, StringID("x"), nil)), `{"jsonrpc":"2.0","id":"x","result":null}`)
	f("result appends", must(AppendResult([]byte("prev\n"), IntID(2), true)), "prev\n"+`{"jsonrpc":"2.0","id":2,"result":true}`)
	f("result raw", AppendResultRaw(nil, StringID(`a"b`), []byte(`{"tools":[]}`)), `{"jsonrpc":"2.0","id":"a\"b","result":{"tools":[]}}`)
	f("result raw empty", AppendResultRaw(nil, IntID(-3), nil), `{"jsonrpc":"2.0","id":-3,"result":null}`)
	f("error", AppendError(nil, IntID(7), NewError(CodeMethodNotFound, "method %q not found", "x/y")), `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"method \"x/y\" not found"}}`)
	f("error absent id", AppendError(nil, ID{}, NewError(CodeParseError, "bad")), `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}`)
	f("error null id", AppendError(nil, NullID, NewError(CodeParseError, "bad")), `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}`)
	f("error data", AppendError(nil, IntID(1), NewError(CodeRateLimited, "rate limit 100/s exceeded").WithData(map[string]any{"retryAfterMs": 250, "limit": 100})),
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"rate limit 100/s exceeded","data":{"limit":100,"retryAfterMs":250}}}`)
	f("error raw data", AppendError(nil, IntID(1), NewError(CodeInternalError, "x").WithData(RawJSON(`{ "a" : 1 }`))), `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x","data":{"a":1}}}`)
	f("error bad data dropped", AppendError(nil, IntID(1), NewError(CodeInternalError, "x").WithData(math.NaN())), `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x"}}`)
	f("error nil", AppendError(nil, IntID(1), nil), `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}`)
	f("error escapes", AppendError(nil, IntID(1), NewError(CodeInvalidParams, "bad \x01\n<&> \xff \u2028")), `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad \u0001\n<&> \ufffd \u2028"}}`)
	f("request", must(AppendRequest(nil, IntID(1), "sampling/createMessage", map[string]any{"maxTokens": 10})), `{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"maxTokens":10}}`)
	f("request no params", must(AppendRequest(nil, StringID("p"), "ping", nil)), `{"jsonrpc":"2.0","id":"p","method":"ping"}`)
	f("request typed nil params", must(AppendRequest(nil, IntID(1), "ping", map[string]any(nil))), `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	f("notification", must(AppendNotification(nil, "notifications/progress", map[string]any{"progressToken": "t", "progress": 1})), `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":"t"}}`)
	f("notification no params", must(AppendNotification(nil, "notifications/initialized", nil)), `{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	// Failures leave dst as it was.
	dst := []byte("keep")
	if out, err := AppendResult(dst, IntID(1), math.Inf(1)); err == nil || string(out) != "keep" {
		t.Errorf("AppendResult(Inf) = %q, %v", out, err)
	}
	if out, err := AppendRequest(dst, IntID(1), "m", make(chan int)); err == nil || string(out) != "keep" {
		t.Errorf("AppendRequest(chan) = %q, %v", out, err)
	}
}

// marshalStd is encoding/json with HTML escaping off, the reference for Marshal.
func marshalStd(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

type marshalerT struct{ n int }

func (m marshalerT) MarshalJSON() ([]byte, error) { return []byte(`{ "n" : 1 }`), nil }

type tool struct {
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Meta        map[string]any  `json:"_meta,omitempty"`
	Annotations *struct {
		ReadOnly bool `json:"readOnlyHint,omitempty"`
	} `json:"annotations,omitempty"`
	M      marshalerT `json:"m"`
	skip   int
	Ignore int `json:"-"`
}

func TestMarshalMatchesStd(t *testing.T) {
	cases := []any{
		nil, true, 0, -1.5, 1e21, "\u2028\u2029x\u2029", map[string]string{"\u2028k": "\u2029"}, "héllo <b>&</b> \u2028 \x00 \xff", []byte("bytes"),
		map[string]any{"z": 1, "a": []any{nil, "x", 2.5}, "m": map[string]int{"b": 2, "a": 1}},
		[]tool{{Name: "echo", InputSchema: json.RawMessage(`{"type": "object"}`)}, {Name: "t", Title: "T", Meta: map[string]any{"k": "v"}, InputSchema: json.RawMessage(`{}`), skip: 1, Ignore: 2}},
		struct {
			A int    `json:"a,string"`
			B string `json:",omitempty"`
			C []int
		}{A: 5},
	}
	for _, v := range cases {
		want, err := marshalStd(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", v, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Marshal(%#v):\n got %s\nwant %s", v, got, want)
		}
		app, err := MarshalAppend([]byte("x"), v)
		if err != nil || string(app) != "x"+string(want) {
			t.Errorf("MarshalAppend = %s, %v", app, err)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	type params struct {
		Name      string            `json:"name"`
		Arguments json.RawMessage   `json:"arguments"`
		N         int               `json:"n,omitempty"`
		Meta      map[string]string `json:"_meta"`
		Any       []any             `json:"any"`
		Num       json.Number       `json:"num"`
	}
	data := []byte(`{"name":"echo","arguments":{"text":"hi"},"NAME2":1,"_meta":{"k":"v"},"any":["s",{"x":"y"}],"num":1.5}`)
	var p params
	if err := Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%+v", p)
	if p.Name != "echo" || string(p.Arguments) != `{"text":"hi"}` || p.Meta["k"] != "v" || p.Num != "1.5" {
		t.Fatalf("got %s", want)
	}
	copy(data, bytes.Repeat([]byte("x"), len(data)))
	if got := fmt.Sprintf("%+v", p); got != want {
		t.Fatalf("Unmarshal result aliases input:\n got %s\nwant %s", got, want)
	}
	if err := Unmarshal([]byte(`{"name":1}`), &p); err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "codec: unmarshal: ") {
		t.Fatalf("error %q", err)
	}
	var q params
	if err := Unmarshal([]byte(`{"Name":"ci"}`), &q); err != nil || q.Name != "ci" {
		t.Fatalf("case-insensitive match: %+v %v", q, err)
	}
	if err := UnmarshalStrict([]byte(`{"name":"x","extra":1}`), &q); err == nil {
		t.Fatal("UnmarshalStrict accepted an unknown field")
	}
	if err := UnmarshalStrict([]byte(`{"name":"x"}`), &q); err != nil {
		t.Fatalf("UnmarshalStrict: %v", err)
	}
	if err := Unmarshal([]byte(`{"name":"x"} x`), &q); err == nil {
		t.Fatal("Unmarshal accepted trailing data")
	}
	if err := Unmarshal([]byte(`{"name":1}`), &q); err == nil {
		t.Fatal("Unmarshal accepted a number for a string")
	}
	// Same results as encoding/json on generic values and edge cases.
	for _, in := range []string{"\"\xff\"", `"\ud800x"`, `{"a":1,"A":2}`, `[1,2.5,-0,1e308]`, `[1e400]`, `null`, `{"a":{"b":[true,false,{}]}}`, `"\u00e9\n"`} {
		var got, want any
		gotErr, wantErr := Unmarshal([]byte(in), &got), json.Unmarshal([]byte(in), &want)
		if (gotErr != nil) != (wantErr != nil) || (wantErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("Unmarshal(%q) = %#v, %v; encoding/json: %#v, %v", in, got, gotErr, want, wantErr)
		}
	}
	var v any
	if err := Unmarshal([]byte(`{"a":[1,"b",null]}`), &v); err != nil {
		t.Fatal(err)
	}
	if got, _ := Marshal(v); string(got) != `{"a":[1,"b",null]}` {
		t.Fatalf("any round trip: %s", got)
	}
}

func TestValid(t *testing.T) {
	for in, want := range map[string]bool{
		`{}`: true, ` [1, "a", null] `: true, `1`: true, ``: false, `{`: false, "\"\xff\"": false,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000): true,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001): false,
	} {
		if got := Valid([]byte(in)); got != want {
			t.Errorf("Valid(%.20q) = %v, want %v", in, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	var d Decoder
	var buf []byte
	var err error
	check := func(kind Kind, id ID, method, payload string) {
		t.Helper()
		msgs, _, err := d.Decode(buf, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", buf, err)
		}
		m := msgs[0]
		if m.Kind != kind || !m.ID.Equal(id) || m.Method != method {
			t.Fatalf("round trip %s: kind=%v id=%s method=%q", buf, m.Kind, m.ID, m.Method)
		}
		got := string(m.Params) + string(m.Result) + string(m.ErrData)
		if got != payload {
			t.Fatalf("round trip %s: payload %s, want %s", buf, got, payload)
		}
	}
	for _, id := range []ID{IntID(0), IntID(-1 << 63), IntID(1<<63 - 1), StringID(""), StringID("é\"\\\n\u2028x"), StringID("\xff")} {
		buf, err = AppendRequest(buf[:0], id, "tools/call", map[string]any{"name": "echo"})
		if err != nil {
			t.Fatal(err)
		}
		check(KindRequest, id, "tools/call", `{"name":"echo"}`)
		buf = AppendResultRaw(buf[:0], id, []byte(`{"content":[]}`))
		check(KindResponse, id, "", `{"content":[]}`)
		buf = AppendError(buf[:0], id, NewError(CodeRequestCancelled, "cancelled").WithData([]int{1}))
		check(KindError, id, "", `[1]`)
	}
	buf, _ = AppendNotification(buf[:0], "notifications/message\u00e9", []int{1, 2})
	check(KindNotification, ID{}, "notifications/message\u00e9", `[1,2]`)
}

func TestErrorTable(t *testing.T) {
	f := func(c Code, name string, status int) {
		t.Helper()
		if c.Name() != name || c.HTTPStatus() != status {
			t.Errorf("%d: name %q status %d, want %q %d", int(c), c.Name(), c.HTTPStatus(), name, status)
		}
	}
	f(CodeParseError, "parse_error", 400)
	f(CodeInvalidRequest, "invalid_request", 400)
	f(CodeMethodNotFound, "method_not_found", 200)
	f(CodeInvalidParams, "invalid_params", 200)
	f(CodeInternalError, "internal_error", 200)
	f(CodeConnectionClosed, "connection_closed", 200)
	f(CodeRequestTimeout, "request_timeout", 200)
	f(CodeResourceNotFound, "resource_not_found", 200)
	f(CodeURLElicitationRequired, "url_elicitation_required", 200)
	f(CodeRateLimited, "rate_limited", 429)
	f(CodeOverloaded, "overloaded", 503)
	f(CodeMessageTooLarge, "message_too_large", 413)
	f(CodeUnauthorized, "unauthorized", 401)
	f(CodeForbidden, "forbidden", 403)
	f(CodeNotInitialized, "not_initialized", 200)
	f(CodeRequestCancelled, "request_cancelled", 200)
	f(CodeSessionNotFound, "session_not_found", 404)
	f(CodeBadSignature, "bad_signature", 401)
	f(CodeResponseTooLarge, "response_too_large", 413)
	f(CodeShuttingDown, "shutting_down", 503)
	f(Code(-32050), "other", 200)
	f(Code(7), "other", 200)
	// Every code in the table has its own metric label, in the JSON-RPC
	// reserved range, with a status from the documented set.
	names := map[string]Code{}
	for c, info := range codeTable {
		if prev, dup := names[info.name]; dup || info.name == "other" || info.name == "" {
			t.Errorf("code %d: name %q not unique (also %d)", int(c), info.name, int(prev))
		}
		names[info.name] = c
		if c > -32000 || c < -32768 {
			t.Errorf("code %d outside the JSON-RPC reserved range", int(c))
		}
		switch info.status {
		case 200, 400, 401, 403, 404, 413, 429, 503:
		default:
			t.Errorf("code %d: HTTP status %d", int(c), info.status)
		}
	}

	err := error(NewError(CodeRateLimited, "rate limit %d/s exceeded", 100).WithData(map[string]int{"retryAfterMs": 10}))
	if !errors.Is(err, &Error{Code: CodeRateLimited}) || errors.Is(err, &Error{Code: CodeOverloaded}) {
		t.Error("Is does not compare codes")
	}
	if got := err.Error(); got != "jsonrpc rate_limited(-32003): rate limit 100/s exceeded" {
		t.Errorf("Error() = %q", got)
	}
	if NewError(CodeInternalError, "100%%").Message != "100%" {
		t.Error("NewError formats without args")
	}
}

func TestID(t *testing.T) {
	if NullID.Kind() != IDNull || string(NullID.Raw()) != "null" || NullID.String() != "null" {
		t.Error("NullID")
	}
	var absent ID
	if absent.Kind() != IDAbsent || absent.Raw() != nil || absent.String() != "<absent>" || absent.Key() != "" {
		t.Error("absent ID")
	}
	if s := StringID("a\"b"); string(s.Raw()) != `"a\"b"` || s.Key() != "sa\"b" {
		t.Errorf("StringID raw %s key %q", s.Raw(), s.Key())
	}
	if n, ok := IntID(-42).Int(); !ok || n != -42 {
		t.Error("IntID Int")
	}
	if s, ok := StringID("x").Str(); !ok || s != "x" {
		t.Error("StringID Str")
	}
	if _, ok := StringID("1").Int(); ok {
		t.Error("string id is not a number")
	}
	// Same value, different spelling: same key, Equal.
	a := ID{kind: IDString, raw: []byte(`"a\u0062"`)}
	if !a.Equal(StringID("ab")) || a.Key() != StringID("ab").Key() {
		t.Error("escaped string id not equal")
	}
	if !(ID{kind: IDNumber, raw: []byte("-0")}).Equal(IntID(0)) {
		t.Error("-0 != 0")
	}
	if StringID("1").Equal(IntID(1)) || StringID("1").Key() == IntID(1).Key() {
		t.Error(`"1" == 1`)
	}
}
