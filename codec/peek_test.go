package codec

import "testing"

func TestPeekID(t *testing.T) {
	f := func(head, want string) {
		t.Helper()
		got := PeekID([]byte(head))
		if string(got.Raw()) != want {
			t.Errorf("PeekID(%q) = %s, want %s", head, got.Raw(), want)
		}
	}
	f(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"a":"xxxxxxxx`, `42`)
	f(`{"id":"abc","jsonrpc":"2.0","params":{`, `"abc"`)
	f(`  {"jsonrpc":"2.0", "id" : -7 ,"params":[1,2`, `-7`)
	f(`{"jsonrpc":"2.0","method":"x","params":{"id":9,"s":"}{\"]"},"id":3,"more`, `3`)
	f(`{"jsonrpc":"2.0","id":"a\"b","params":`, `"a\"b"`)
	f(`{"jsonrpc":"2.0","method":"x","params":{"big":"xxxxxxxxxxxxxxxx`, `null`) // id after the cut
	f(`{"jsonrpc":"2.0","id":12`, `null`)                                        // number cut short
	f(`{"jsonrpc":"2.0","id":"ab`, `null`)                                       // string cut short
	f(`{"jsonrpc":"2.0","id":1.5,"x":`, `null`)                                  // not an integer
	f(`{"jsonrpc":"2.0","id":null,"x":`, `null`)
	f(`{"jsonrpc":"2.0","id":{"x":1},"y":`, `null`)
	f(`[{"jsonrpc":"2.0","id":1}`, `null`) // a batch: no single id
	f(`not json at all`, `null`)
	f(``, `null`)
	f(`{"a":tru`, `null`)
	f(`{"a":true,"b":false,"c":null,"d":[{"e":"f"}],"id":"z","`, `"z"`)
	f("{\"s\":\"\xff\",\"id\":1,", `null`) // invalid UTF-8 before the id: stop
}

func FuzzPeekID(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"a":"x"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","params":{"a":[1,{"b":"c"}]},"id":"s"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id := PeekID(b)
		if id.Kind() == IDNull {
			return
		}
		// A found id must be one the decoder would take from the whole message.
		var d Decoder
		if ms, _, err := d.Decode(b, nil); err == nil && len(ms) == 1 && ms[0].ID.Kind() != IDAbsent && !ms[0].ID.Equal(id) {
			t.Fatalf("PeekID(%q) = %s, decoder says %s", b, id.Raw(), ms[0].ID.Raw())
		}
	})
}
