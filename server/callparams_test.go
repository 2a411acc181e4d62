package server

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/erlmcp/erlmcp-go/codec"
)

var callParamsInputs = []string{
	`{"name":"echo","arguments":{"text":"hello"}}`,
	` { "name" : "echo" , "arguments" : { "text" : "a b" , "n" : [1, 2.5e3, null, true] } } `,
	`{"arguments":{"text":"hello"},"name":"echo"}`,
	`{"name":"echo"}`, `{"name":"echo","arguments":{}}`, `{"name":"echo","arguments":null}`,
	`{"name":"echo","arguments":[1]}`, `{"name":"echo","arguments":"x"}`, `{"name":""}`, `{"name":5}`,
	`{"name":null}`, `{"name":"e\u0063ho"}`, `{"Name":"echo"}`, `{"NAME":"echo","arguments":{}}`,
	`{"name":"echo","name":"add"}`, `{"name":"echo","arguments":{},"arguments":{"a":1}}`,
	`{"name":"echo","_meta":{"progressToken":1}}`, `{"name":"echo","task":{"ttl":1}}`, `{}`, `[]`, `null`, ``,
	`{"name":"echo",}`, `{"name":"echo"`, `{"name":"echo"} x`, `{"name":"echo","arguments":{"t":"\ud800"}}`,
	`{"name":"echo","arguments":{"n":1e400}}`, `{"name":"échø ✓","arguments":{"k":"é"}}`, "{\"name\":\"a\xffb\"}",
	`{"name":"echo","arguments":{"te\u0078t":"x\n"}}`,
}

// checkCallParams: whenever the fast walk decodes params, sonic decodes them to the same.
func checkCallParams(t *testing.T, in []byte) {
	t.Helper()
	var fast CallToolParams
	if !fastCallParams(in, &fast) {
		return
	}
	var slow CallToolParams
	if err := codec.Unmarshal(in, &slow); err != nil {
		t.Fatalf("%q: fast walk decoded %+v, sonic refuses: %v", in, fast, err)
	}
	if fast.Name != slow.Name || !bytes.Equal(fast.Arguments, slow.Arguments) || !reflect.DeepEqual(fast.Meta, slow.Meta) {
		t.Fatalf("%q: fast walk %+v (args %s), sonic %+v (args %s)", in, fast, fast.Arguments, slow, slow.Arguments)
	}
	if len(in) > 0 && len(fast.Arguments) > 0 && &fast.Arguments[0] == &in[bytes.Index(in, fast.Arguments)] {
		t.Fatalf("%q: arguments alias the frame", in)
	}
}

func TestCallParamsDifferential(t *testing.T) {
	fast := 0
	for _, in := range callParamsInputs {
		checkCallParams(t, []byte(in))
		var p CallToolParams
		if fastCallParams([]byte(in), &p) {
			fast++
		}
	}
	if fast < 6 {
		t.Fatalf("fast walk took only %d of the table's params", fast)
	}
	// What the walk leaves alone still decodes (or fails) as before, through sonic.
	for _, c := range []struct {
		in, name, args string
		fails          bool
	}{
		{`{"name":"echo","arguments":{"text":"hello"}}`, "echo", `{"text":"hello"}`, false},
		{`{"name":"e\u0063ho"}`, "echo", ``, false},
		{`{"NAME":"echo"}`, "echo", ``, false},
		{`{"name":"echo","_meta":{"progressToken":1}}`, "echo", ``, false},
		{`{"name":5}`, "", ``, true},
	} {
		r := &Request{Method: MethodToolsCall, Params: []byte(c.in)}
		var p CallToolParams
		err := decodeCallParams(r, &p)
		if (err != nil) != c.fails || p.Name != c.name || string(p.Arguments) != c.args {
			t.Errorf("%s: got %+v (args %s), err %v", c.in, p, p.Arguments, err)
		}
	}
}

func FuzzCallParams(f *testing.F) {
	for _, in := range callParamsInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkCallParams(t, in) })
}

func BenchmarkCallParams(b *testing.B) {
	in := []byte(`{"name":"echo","arguments":{"text":"hello"}}`)
	r := &Request{Method: MethodToolsCall, Params: in}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p CallToolParams
			if err := decodeCallParams(r, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sonic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p CallToolParams
			if err := decodeParams(r, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
