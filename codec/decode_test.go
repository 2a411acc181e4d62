package codec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDecodeSingle(t *testing.T) {
	f := func(name, in string, kind Kind, idKind IDKind, idRaw, method, params string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Helper()
			var d Decoder
			msgs, batch, err := d.Decode([]byte(in), nil)
			if err != nil {
				t.Fatalf("Decode(%s): %v", in, err)
			}
			if batch || len(msgs) != 1 {
				t.Fatalf("batch=%v len=%d, want single", batch, len(msgs))
			}
			m := msgs[0]
			if m.Kind != kind || m.ID.Kind() != idKind || string(m.ID.Raw()) != idRaw || m.Method != method || string(m.Params) != params {
				t.Fatalf("got kind=%v id=%v/%s method=%q params=%s; want %v %v/%s %q %s",
					m.Kind, m.ID.Kind(), m.ID.Raw(), m.Method, m.Params, kind, idKind, idRaw, method, params)
			}
		})
	}
	f("request int id", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, KindRequest, IDNumber, "1", "tools/call", `{"name":"echo"}`)
	f("request negative id", `{"jsonrpc":"2.0","id":-7,"method":"ping"}`, KindRequest, IDNumber, "-7", "ping", "")
	f("request string id", `{"jsonrpc":"2.0","id":"abc-1","method":"ping"}`, KindRequest, IDString, `"abc-1"`, "ping", "")
	f("request empty string id", `{"jsonrpc":"2.0","id":"","method":"ping"}`, KindRequest, IDString, `""`, "ping", "")
	f("huge integer id", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}`, KindRequest, IDNumber, "123456789012345678901234567890", "ping", "")
	f("params array", `{"jsonrpc":"2.0","id":1,"method":"m","params":[1,2]}`, KindRequest, IDNumber, "1", "m", "[1,2]")
	f("member order", `{"params":{},"method":"m","id":2,"jsonrpc":"2.0"}`, KindRequest, IDNumber, "2", "m", "{}")
	f("notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, IDAbsent, "", "notifications/initialized", "")
	f("notification progress", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":0.5}}`, KindNotification, IDAbsent, "", "notifications/progress", `{"progressToken":"t","progress":0.5}`)
	f("response", `{"jsonrpc":"2.0","id":3,"result":{}}`, KindResponse, IDNumber, "3", "", "")
	f("response null result", `{"jsonrpc":"2.0","id":3,"result":null}`, KindResponse, IDNumber, "3", "", "")
	f("response null id", `{"jsonrpc":"2.0","id":null,"result":1}`, KindResponse, IDNull, "null", "", "")
	f("error response", `{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"no such method","data":{"m":"x"}}}`, KindError, IDString, `"x"`, "", "")
	f("error response null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, KindError, IDNull, "null", "", "")
	f("whitespace and CRLF", " \t{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"ping\" }\r\n", KindRequest, IDNumber, "1", "ping", "")
	f("trailing CR", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r", KindRequest, IDNumber, "1", "ping", "")
	f("escaped method", `{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, KindRequest, IDNumber, "1", "tools/call", "")
	f("escaped key", `{"jsonrpc":"2.0","\u0069d":1,"method":"ping"}`, KindRequest, IDNumber, "1", "ping", "")
	f("unknown member kept out", `{"jsonrpc":"2.0","id":1,"method":"ping","x":[1,{"y":2}],"z":null}`, KindRequest, IDNumber, "1", "ping", "")
	f("huge numbers in params", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"n":1e999999,"m":-123456789012345678901234567890.5e-400}}`, KindRequest, IDNumber, "1", "m", `{"n":1e999999,"m":-123456789012345678901234567890.5e-400}`)
	f("utf8 in params", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"t":"héllo 🌍 \u00e9"}}`, KindRequest, IDNumber, "1", "m", `{"t":"héllo 🌍 \u00e9"}`)
	f("unicode method", `{"jsonrpc":"2.0","id":1,"method":"outil/appelé"}`, KindRequest, IDNumber, "1", "outil/appelé", "")
}

func TestDecodeErrorResponseFields(t *testing.T) {
	var d Decoder
	msgs, _, err := d.Decode([]byte(`{"jsonrpc":"2.0","id":5,"error":{"data":[1],"message":"bad \"x\"","code":-32602}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.ErrCode != CodeInvalidParams || m.ErrMessage != `bad "x"` || string(m.ErrData) != "[1]" {
		t.Fatalf("got %v %q %s", m.ErrCode, m.ErrMessage, m.ErrData)
	}
}

func TestDecodeFailures(t *testing.T) {
	f := func(name, in string, code Code, id string, msgPart string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Helper()
			var d Decoder
			msgs, _, err := d.Decode([]byte(in), make([]Message, 0, 4))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want error %v", in, msgs, code)
			}
			if len(msgs) != 0 {
				t.Fatalf("len(msgs) = %d on error", len(msgs))
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.Code != code {
				t.Fatalf("code = %v (%s), want %v", e.Code, e.Message, code)
			}
			if e.ID.String() != id {
				t.Fatalf("error id = %s, want %s", e.ID, id)
			}
			if !strings.Contains(e.Message, msgPart) {
				t.Fatalf("message %q does not contain %q", e.Message, msgPart)
			}
		})
	}
	// -32700
	f("empty", "", CodeParseError, "null", "empty input")
	f("whitespace only", " \r\n", CodeParseError, "null", "empty input")
	f("not json", "hello", CodeParseError, "null", "unexpected character")
	f("truncated", `{"jsonrpc":"2.0","id":1`, CodeParseError, "null", "unexpected end")
	f("trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"}x`, CodeParseError, "null", "trailing data")
	f("two values", `{"jsonrpc":"2.0","id":1,"method":"ping"} {}`, CodeParseError, "null", "trailing data")
	f("trailing comma", `{"jsonrpc":"2.0","id":1,"method":"ping",}`, CodeParseError, "null", "expected object key")
	f("single quotes", `{'jsonrpc':'2.0'}`, CodeParseError, "null", "expected object key")
	f("leading zero", `{"jsonrpc":"2.0","id":01,"method":"ping"}`, CodeParseError, "null", "expected ','")
	f("bad escape", `{"jsonrpc":"2.0","id":1,"method":"p\x"}`, CodeParseError, "null", "bad escape")
	f("bad unicode escape", `{"jsonrpc":"2.0","id":1,"method":"p\u12G4"}`, CodeParseError, "null", "bad \\u escape")
	f("control char", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\tq\"}", CodeParseError, "null", "control character")
	f("invalid utf8 in string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffq\"}", CodeParseError, "null", "invalid UTF-8")
	f("invalid utf8 in key", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\",\"k\xc3\x28\":1}", CodeParseError, "null", "invalid UTF-8")
	f("surrogate half raw utf8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}", CodeParseError, "null", "invalid UTF-8")
	f("bad literal", `{"jsonrpc":"2.0","id":tru,"method":"ping"}`, CodeParseError, "null", "bad literal")
	f("bad number", `{"jsonrpc":"2.0","id":1.,"method":"ping"}`, CodeParseError, "null", "bad number")
	f("too deep", `{"jsonrpc":"2.0","id":1,"method":"m","params":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}`, CodeParseError, "null", "nesting depth exceeds 128")
	f("batch with parse error", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{]`, CodeParseError, "null", "expected object key")
	// -32600
	f("not an object", `42`, CodeInvalidRequest, "null", "not a JSON object")
	f("string frame", `"x"`, CodeInvalidRequest, "null", "not a JSON object")
	f("empty object", `{}`, CodeInvalidRequest, "null", `missing "jsonrpc"`)
	f("missing jsonrpc", `{"id":1,"method":"ping"}`, CodeInvalidRequest, "1", `missing "jsonrpc"`)
	f("jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest, "1", `"jsonrpc" must be "2.0"`)
	f("jsonrpc number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, CodeInvalidRequest, "1", `"jsonrpc" must be "2.0"`)
	f("id fraction", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, CodeInvalidRequest, "null", "id must be a string or an integer, got 1.5")
	f("id exponent", `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, CodeInvalidRequest, "null", "id must be")
	f("id bool", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, CodeInvalidRequest, "null", "id must be")
	f("id object", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, "null", "id must be")
	f("id array", `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, CodeInvalidRequest, "null", "id must be")
	f("request id null", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, "null", "must not be null")
	f("method number", `{"jsonrpc":"2.0","id":1,"method":5}`, CodeInvalidRequest, "1", "method must be a string")
	f("method null", `{"jsonrpc":"2.0","id":"a","method":null}`, CodeInvalidRequest, `"a"`, "method must be a string")
	f("params string", `{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}`, CodeInvalidRequest, "1", "params must be")
	f("params null", `{"jsonrpc":"2.0","id":1,"method":"m","params":null}`, CodeInvalidRequest, "1", "params must be")
	f("params number", `{"jsonrpc":"2.0","method":"m","params":3}`, CodeInvalidRequest, "null", "params must be")
	f("result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, CodeInvalidRequest, "1", "both result and error")
	f("method and result", `{"jsonrpc":"2.0","id":1,"method":"m","result":{}}`, CodeInvalidRequest, "1", "both method and result")
	f("neither", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, "1", "neither method nor result")
	f("long value cut", `{"jsonrpc":"2.0","id":1,"method":"m","params":"`+strings.Repeat("é", 40)+`"}`, CodeInvalidRequest, "1", `got "`+strings.Repeat("é", 15)+"…")
	f("response without id", `{"jsonrpc":"2.0","result":{}}`, CodeInvalidRequest, "null", "response has no id")
	f("duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeInvalidRequest, "2", `duplicate member "id"`)
	f("duplicate method", `{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}`, CodeInvalidRequest, "1", "duplicate member")
	f("duplicate escaped key", `{"jsonrpc":"2.0","id":1,"method":"a","m\u0065thod":"b"}`, CodeInvalidRequest, "1", "duplicate member")
	f("duplicate unknown key", `{"jsonrpc":"2.0","id":1,"method":"a","x":1,"x":2}`, CodeInvalidRequest, "1", "duplicate member")
	f("error not object", `{"jsonrpc":"2.0","id":1,"error":"x"}`, CodeInvalidRequest, "1", "error must be an object")
	f("error code float", `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}`, CodeInvalidRequest, "1", "error code must be an integer")
	f("error code missing", `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, CodeInvalidRequest, "1", "error has no code")
	f("error message missing", `{"jsonrpc":"2.0","id":1,"error":{"code":1}}`, CodeInvalidRequest, "1", "error message must be a string")
	f("empty batch", `[]`, CodeInvalidRequest, "null", "empty batch")
	f("empty batch ws", " [ \r\n ] ", CodeInvalidRequest, "null", "empty batch")
}

func TestDecodeBatch(t *testing.T) {
	in := `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},
		1,
		{"jsonrpc":"2.0","method":"notifications/initialized"},
		{"jsonrpc":"1.0","id":"bad","method":"x"},
		{"jsonrpc":"2.0","id":2,"result":{"ok":true}},
		[],
		{"jsonrpc":"2.0","id":{"x":1},"method":"x"},
		{"jsonrpc":"2.0","id":9,"error":{"code":-32000,"message":"closed"}}]`
	var d Decoder
	msgs, batch, err := d.Decode([]byte(in), nil)
	if err != nil || !batch {
		t.Fatalf("err=%v batch=%v", err, batch)
	}
	want := []struct {
		kind Kind
		id   string
		code Code
	}{
		{KindRequest, "1", 0},
		{KindInvalid, "null", CodeInvalidRequest},
		{KindNotification, "<absent>", 0},
		{KindInvalid, `"bad"`, CodeInvalidRequest},
		{KindResponse, "2", 0},
		{KindInvalid, "null", CodeInvalidRequest},
		{KindInvalid, "null", CodeInvalidRequest},
		{KindError, "9", 0},
	}
	if len(msgs) != len(want) {
		t.Fatalf("len = %d, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		if m.Kind != w.kind || m.ID.String() != w.id {
			t.Errorf("[%d] kind=%v id=%s, want %v %s", i, m.Kind, m.ID, w.kind, w.id)
		}
		if (m.Err != nil) != (w.code != 0) || (m.Err != nil && (m.Err.Code != w.code || m.Err.ID.String() != w.id)) {
			t.Errorf("[%d] Err=%v, want code %v", i, m.Err, w.code)
		}
	}
	if string(msgs[4].Result) != `{"ok":true}` {
		t.Errorf("result = %s", msgs[4].Result)
	}
	// Single-element batch is still a batch.
	msgs, batch, err = d.Decode([]byte(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`), msgs)
	if err != nil || !batch || len(msgs) != 1 || msgs[0].Kind != KindRequest {
		t.Fatalf("single batch: %v %v %d", err, batch, len(msgs))
	}
}

func TestDecodeDepth(t *testing.T) {
	nest := func(n int) string {
		return `{"jsonrpc":"2.0","id":1,"method":"m","params":` + strings.Repeat(`{"a":`, n-1) + "1" + strings.Repeat("}", n-1) + "}"
	}
	var d Decoder
	// Depth counts the envelope: params nested 127 objects deep inside it is 128.
	if _, _, err := d.Decode([]byte(nest(128)), nil); err != nil {
		t.Fatalf("depth 128: %v", err)
	}
	if _, _, err := d.Decode([]byte(nest(129)), nil); err == nil || !strings.Contains(err.Error(), "nesting depth exceeds 128") {
		t.Fatalf("depth 129: %v", err)
	}
	small := Decoder{MaxDepth: 3}
	if _, _, err := small.Decode([]byte(`[{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}]`), nil); err != nil {
		t.Fatalf("depth 3 with MaxDepth 3: %v", err)
	}
	if _, _, err := small.Decode([]byte(`[{"jsonrpc":"2.0","id":1,"method":"m","params":[[1]]}]`), nil); err == nil {
		t.Fatal("depth 4 with MaxDepth 3: no error")
	}
	big := Decoder{MaxDepth: 1000}
	if _, _, err := big.Decode([]byte(nest(999)), nil); err != nil {
		t.Fatalf("depth 999 with MaxDepth 1000: %v", err)
	}
	if _, _, err := big.Decode([]byte(nest(1001)), nil); err == nil {
		t.Fatal("depth 1001 with MaxDepth 1000: no error")
	}
	// Past the 255 levels kept without allocating, mixed arrays and objects
	// must still close correctly.
	mixed := func(n int) string {
		var o, c strings.Builder
		for i := 0; i < n-1; i++ {
			if i%3 == 0 {
				o.WriteString(`{"k":`)
				c.WriteString("}")
			} else {
				o.WriteString("[0,")
				c.WriteString("]")
			}
		}
		cl := []byte(c.String())
		for i, j := 0, len(cl)-1; i < j; i, j = i+1, j-1 {
			cl[i], cl[j] = cl[j], cl[i]
		}
		return `{"jsonrpc":"2.0","id":1,"method":"m","params":` + o.String() + "1" + string(cl) + "}"
	}
	d300 := Decoder{MaxDepth: 300}
	for _, n := range []int{254, 255, 256, 257, 300} {
		if _, _, err := d300.Decode([]byte(mixed(n)), nil); err != nil {
			t.Fatalf("mixed depth %d with MaxDepth 300: %v", n, err)
		}
	}
	if _, _, err := d300.Decode([]byte(mixed(301)), nil); err == nil {
		t.Fatal("mixed depth 301 with MaxDepth 300: no error")
	}
	for _, open := range []string{"[", "{\"a\":"} {
		deep := []byte(strings.Repeat(open, 100000))
		for _, dec := range []Decoder{{}, {MaxDepth: 1 << 20}} {
			start := time.Now()
			_, _, err := dec.Decode(deep, nil)
			if err == nil {
				t.Fatalf("10^5 deep %q: no error", open)
			}
			if e := err.(*Error); e.Code != CodeParseError {
				t.Fatalf("10^5 deep: code %v", e.Code)
			}
			if el := time.Since(start); el > time.Second {
				t.Fatalf("10^5 deep took %v", el)
			}
		}
	}
}

func TestDecodeAliasesInput(t *testing.T) {
	b := []byte(`{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"a":1}}`)
	var d Decoder
	msgs, _, err := d.Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	kept := m.ID.Clone()
	key := m.ID.Key()
	copy(b, strings.Repeat("x", len(b)))
	if string(m.Params) == `{"a":1}` {
		t.Fatal("params do not alias input")
	}
	if string(kept.Raw()) != `"r1"` || key != "sr1" {
		t.Fatalf("clone %s key %q changed with input", kept.Raw(), key)
	}
}

func TestDecodeReusesSlice(t *testing.T) {
	var d Decoder
	buf := make([]Message, 0, 8)
	msgs, _, _ := d.Decode([]byte(`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]`), buf)
	msgs2, _, _ := d.Decode([]byte(`{"jsonrpc":"2.0","id":3,"method":"c"}`), msgs)
	if len(msgs2) != 1 || &msgs2[0] != &buf[:1][0] || msgs2[0].Method != "c" {
		t.Fatalf("slice not reused: %d", len(msgs2))
	}
}

// One Decoder serves every connection: it has no mutable state.
func TestDecodeConcurrent(t *testing.T) {
	d := &Decoder{}
	frames := [][]byte{
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`),
		[]byte(`[{"jsonrpc":"2.0","id":"x","result":{}},{"jsonrpc":"2.0","method":"n"}]`),
		[]byte(`{"jsonrpc":"2.0","id":1,"method":`),
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			var msgs []Message
			for i := 0; i < 1000; i++ {
				f := frames[i%len(frames)]
				var err error
				msgs, _, err = d.Decode(f, msgs)
				if (err != nil) != (i%len(frames) == 2) {
					t.Errorf("frame %d: %v", i%len(frames), err)
					return
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

// Many unknown members must not make the duplicate check quadratic.
func TestDecodeManyMembers(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"jsonrpc":"2.0","id":1,"method":"m"`)
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(&sb, `,"k%d":0`, i)
	}
	var d Decoder
	start := time.Now()
	if _, _, err := d.Decode([]byte(sb.String()+"}"), nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := d.Decode([]byte(sb.String()+`,"k199999":1}`), nil)
	if err == nil || !strings.Contains(err.Error(), `duplicate member "k199999"`) {
		t.Fatalf("duplicate among many: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("200000 members took %v", el)
	}
}
