package server

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/erlmcp/erlmcp-go/codec"
)

// kitchenArgs has every field kind argDecoder takes, and fields it must skip.
type kitchenArgs struct {
	S       string  `json:"s"`
	B       bool    `json:"b,omitempty"`
	I       int     `json:"i"`
	I8      int8    `json:"i8"`
	I16     int16   `json:"i16"`
	I32     int32   `json:"i32"`
	I64     int64   `json:"i64"`
	U       uint    `json:"u"`
	U8      uint8   `json:"u8"`
	U16     uint16  `json:"u16"`
	U32     uint32  `json:"u32"`
	U64     uint64  `json:"u64"`
	F       float64 `json:"f"`
	NoTag   string
	Skip    string `json:"-"`
	Dash    string `json:"-,"`
	private int
}

var argDecodeInputs = []string{
	`{}`, ` { } `, `{"s":"x"}`, `{"s":"héllo ✓","b":true,"i":-12,"f":1.5e3}`, `{"s":"a\nb"}`, `{"s":"\u00e9"}`,
	`{"s":5}`, `{"s":null}`, `{"S":"x"}`, `{"s":"x","s":"y"}`, `{"NoTag":"n","-":"d"}`, `{"Skip":"x"}`, `{"private":1}`,
	`{"unknown":1}`, `{"b":false}`, `{"b":"true"}`, `{"b":tru}`, `{"i":1.0}`, `{"i":1e2}`, `{"i":-0}`,
	`{"i":9223372036854775807}`, `{"i":9223372036854775808}`, `{"i8":127}`, `{"i8":128}`, `{"i8":-128}`, `{"i16":-32769}`,
	`{"i32":2147483647}`, `{"i64":-9223372036854775808}`, `{"u":0}`, `{"u":-1}`, `{"u8":255}`, `{"u8":256}`,
	`{"u16":65535}`, `{"u32":4294967296}`, `{"u64":18446744073709551615}`, `{"u64":18446744073709551616}`,
	`{"f":0.1}`, `{"f":-0}`, `{"f":1e308}`, `{"f":1e309}`, `{"f":4.9e-324}`, `{"f":2.2250738585072011e-308}`,
	`{"f":0.30000000000000004441}`, `{"f":123456789012345678901234567890}`, `{"f":"1"}`, `{"s":"x",}`, `{"s":"x"`,
	`{"s":"x"} `, `{"s":"x"}x`, `[]`, `null`, `"s"`, `{"s":"\ud800"}`, "{\"s\":\"\xff\"}", `{"s" "x"}`, `{"i":01}`,
	`{"i":-}`, `{"ms":10,"steps":2,"busy":true}`, `{"ms":10.5}`, `{"text":"hello"}`, `{"a":1,"b":2.5}`,
}

// checkArgDecode: whenever argDecoder decodes, sonic decodes to the same value.
func checkArgDecode[T any](t *testing.T, in []byte) bool {
	t.Helper()
	d := newArgDecoder(reflect.TypeFor[T]())
	if d == nil {
		t.Fatalf("no argDecoder for %T", *new(T))
	}
	var fast T
	if !d.decode(in, unsafe.Pointer(&fast)) {
		return false
	}
	var slow T
	if err := codec.Unmarshal(in, &slow); err != nil {
		t.Fatalf("%T %q: argDecoder decoded %+v, sonic refuses: %v", fast, in, fast, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T %q: argDecoder %+v, sonic %+v", fast, in, fast, slow)
	}
	return true
}

func TestArgDecoderDifferential(t *testing.T) {
	n := 0
	for _, in := range argDecodeInputs {
		for _, ok := range []bool{
			checkArgDecode[kitchenArgs](t, []byte(in)), checkArgDecode[EchoArgs](t, []byte(in)),
			checkArgDecode[SleepArgs](t, []byte(in)), checkArgDecode[AddArgs](t, []byte(in)),
			checkArgDecode[struct{}](t, []byte(in)),
		} {
			if ok {
				n++
			}
		}
	}
	if n < 30 {
		t.Fatalf("argDecoder took only %d table cases", n)
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[struct{ M map[string]any }](), reflect.TypeFor[struct{ F float32 }](),
		reflect.TypeFor[struct{ P *string }](), reflect.TypeFor[struct{ EchoArgs }](),
		reflect.TypeFor[struct {
			N int `json:"n,string"`
		}](),
		reflect.StructOf([]reflect.StructField{ // two fields named "x" (built here: vet refuses the literal)
			{Name: "A", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
			{Name: "B", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
		}),
		reflect.TypeFor[struct{ L protoVersion }](), reflect.TypeFor[map[string]any](), reflect.TypeFor[[]int](),
	} {
		if newArgDecoder(typ) != nil {
			t.Errorf("argDecoder took %v, outside its shape", typ)
		}
	}
}

// TestArgDecoderTool: a typed tool decodes plain and escaped arguments alike.
func TestArgDecoderTool(t *testing.T) {
	s := New(Config{})
	var got []string
	if err := AddTool(s, &Tool{Name: "t"}, func(_ context.Context, _ *Request, in EchoArgs) (*CallToolResult, any, error) {
		got = append(got, in.Text)
		return nil, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	e, _ := s.tools.get("t")
	for _, args := range []string{`{"text":"plain"}`, `{"text":"esc\u00e9"}`, `{"text":"x","text":"last"}`} {
		if _, err := e.handler(context.Background(), &Request{}, []byte(args)); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, "|") != "plain|escé|last" {
		t.Fatalf("decoded %q", got)
	}
	if _, err := e.handler(context.Background(), &Request{}, []byte(`{"text":5}`)); err == nil || !strings.Contains(err.Error(), `tool "t" arguments`) {
		t.Fatalf("bad arguments: err %v", err)
	}
}

func FuzzArgDecoder(f *testing.F) {
	for _, in := range argDecodeInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkArgDecode[kitchenArgs](t, in)
		checkArgDecode[SleepArgs](t, in)
	})
}
