package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/google/jsonschema-go/jsonschema"
)

// fastSchemas are the schemas of the differential tests: the fast subset in its corners,
// and the derived schemas of the demo tools.
var fastSchemas = []string{
	`{"type":"object"}`,
	`{}`,
	`true`,
	`{"type":"object","properties":{"text":{"type":"string","description":"the text"}},"required":["text"],"additionalProperties":false}`,
	`{"type":"object","properties":{"ms":{"type":"integer"},"steps":{"type":"integer"},"busy":{"type":"boolean"}},"required":["ms"],"additionalProperties":false}`,
	`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`,
	`{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":10}}}`,
	`{"type":"object","properties":{"n":{"type":"number","exclusiveMinimum":-1.5,"exclusiveMaximum":2.25}}}`,
	`{"type":"object","properties":{"n":{"minimum":1e300}}}`,
	`{"type":"object","properties":{"s":{"type":"string","minLength":2,"maxLength":4}}}`,
	`{"type":"object","properties":{"s":{"type":"string","pattern":"^[a-z]+$"}}}`,
	`{"type":"object","properties":{"s":{"pattern":"é"}}}`,
	`{"type":"object","properties":{"e":{"enum":["red","green",1,2.5,true,null]}}}`,
	`{"type":"object","properties":{"e":{"enum":[1,2]}}}`,
	`{"type":"object","properties":{"c":{"const":"x"}}}`,
	`{"type":"object","properties":{"c":{"const":3}}}`,
	`{"type":"object","properties":{"t":{"type":["string","null"]}}}`,
	`{"type":"object","properties":{"t":{"type":["integer","boolean"]}}}`,
	`{"type":"object","properties":{"l":{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}}}`,
	`{"type":"object","properties":{"l":{"type":"array","items":false}}}`,
	`{"type":"object","properties":{"l":{"items":{"type":"object","properties":{"k":{"type":"string"}},"required":["k"]}}}}`,
	`{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"number"}},"additionalProperties":{"type":"string"}}}}`,
	`{"type":"object","additionalProperties":{"type":"integer"}}`,
	`{"type":"object","additionalProperties":false}`,
	`{"type":"object","required":["x"],"additionalProperties":{"type":"string"}}`,
	`{"type":"object","required":["x"],"additionalProperties":false}`,
	`{"type":"object","required":["x","y"]}`,
	`{"type":"object","properties":{"f":false,"t":true}}`,
	`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"x":{"type":"string","format":"email","title":"X","default":"a","examples":["b"],"deprecated":true}}}`,
	`{"type":"object","properties":{"x":{"type":"string"}},"x-vendor":{"anything":1}}`,
	`{"type":"object","properties":{"deep":{"type":"object","properties":{"deeper":{"type":"array","items":{"type":"array","items":{"type":["number","string"],"maxLength":1,"maximum":5}}}}}}}`,
}

// slowSchemas use keywords outside the fast subset: compileFast must refuse them.
var slowSchemas = []string{
	`{"type":"object","properties":{"x":{"anyOf":[{"type":"string"},{"type":"integer"}]}}}`,
	`{"type":"object","properties":{"x":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"string"}}}`,
	`{"type":"object","minProperties":1}`,
	`{"type":"object","patternProperties":{"^a":{"type":"string"}}}`,
	`{"type":"object","properties":{"x":{"multipleOf":2}}}`,
	`{"type":"object","properties":{"x":{"uniqueItems":true}}}`,
	`{"type":"object","properties":{"x":{"not":{"type":"string"}}}}`,
	`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`,
	`{"type":"object","properties":{"x":{"enum":[[1],{"a":1}]}}}`,
	`{"type":"object","properties":{"x":{"prefixItems":[{"type":"string"}]}}}`,
}

// fastInputs are arguments for every schema: valid and invalid in each keyword, and the
// cases the fast path leaves to the full one (duplicates, escapes, huge numbers).
var fastInputs = []string{
	``, `null`, `{}`, ` { } `, `[]`, `"x"`, `1`, `{"text":"hello"}`, `{"text":""}`, `{"text":5}`,
	`{"text":"hello","extra":1}`, `{"text":null}`, `{"txt":"hello"}`, `{"text":"a\nb\u00e9\"\\\/"}`,
	`{"te\u0078t":"hello"}`, `{"text":"a","text":5}`, `{"text":5,"text":"a"}`, `{"text":"\ud83d\ude00"}`,
	`{"text":"\ud800"}`, `{"text":"héllo wörld ✓"}`, `{"ms":10}`, `{"ms":10.0}`, `{"ms":1e2}`,
	`{"ms":10.5}`, `{"ms":-0}`, `{"ms":1e400}`, `{"ms":12345678901234567890}`, `{"ms":10,"busy":true,"steps":3}`,
	`{"ms":10,"busy":"yes"}`, `{"a":1,"b":2}`, `{"a":1}`, `{"a":"1","b":2}`, `{"a":1.5,"b":-2e-3,"c":[{}]}`,
	`{"n":0}`, `{"n":10}`, `{"n":11}`, `{"n":-1}`, `{"n":5.5}`, `{"n":-1.5}`, `{"n":2.25}`, `{"n":2.2499999}`,
	`{"n":-1.4999}`, `{"n":1e300}`, `{"n":1e299}`, `{"n":"5"}`, `{"s":"ab"}`, `{"s":"abcd"}`, `{"s":"a"}`,
	`{"s":"abcde"}`, `{"s":"éé"}`, `{"s":"ééééé"}`, `{"s":"a\u00e9"}`, `{"s":"AB"}`, `{"s":"é"}`, `{"s":7}`,
	`{"e":"red"}`, `{"e":"blue"}`, `{"e":1}`, `{"e":1.0}`, `{"e":2.5}`, `{"e":2}`, `{"e":true}`, `{"e":false}`,
	`{"e":null}`, `{"e":"r\u0065d"}`, `{"e":[1]}`, `{"c":"x"}`, `{"c":"y"}`, `{"c":3}`, `{"c":3.0}`, `{"c":"3"}`,
	`{"t":"s"}`, `{"t":null}`, `{"t":1}`, `{"t":1.5}`, `{"t":true}`, `{"l":[]}`, `{"l":[1]}`, `{"l":[1,2,3]}`,
	`{"l":[1,2,3,4]}`, `{"l":[1,"2"]}`, `{"l":[1.5]}`, `{"l":[{"k":"v"}]}`, `{"l":[{"k":1}]}`, `{"l":[{}]}`,
	`{"l":"notarray"}`, `{"o":{"x":1,"y":"s"}}`, `{"o":{"x":"1"}}`, `{"o":{"y":2}}`, `{"o":[]}`, `{"x":"s"}`,
	`{"x":1}`, `{"y":1}`, `{"x":"s","y":"t"}`, `{"x":1,"y":2}`, `{"f":1}`, `{"t":{"any":[1,{"b":null}]}}`,
	`{"deep":{"deeper":[[1,"a",5],[]]}}`, `{"deep":{"deeper":[[6]]}}`, `{"deep":{"deeper":[["ab"]]}}`,
	`{"deep":{"deeper":[[true]]}}`, `{"x":"a@b"}`, `{"a":1,"b":2,}`, `{"a":1 "b":2}`, `{"a":01}`, `{"a":-}`,
	`{"a":1.}`, `{"a":.5}`, `{"a":tru}`, `{"a":"x}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}",
	`{"a":[1,2}`, `{"a":{"b":1]}`, `{} {}`, `{"a":1}x`, `{"ms":1,"extra":{"nested":[1,2,{"k":"v"}]}}`,
	`{"x":"` + strings.Repeat("y", 40) + `"}`, `{"n":` + strings.Repeat("9", 310) + `}`,
	`{"deep":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
}

func compileForTest(t testing.TB, raw string) *jsonschema.Resolved {
	t.Helper()
	rs, err := compileSchema(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("compileSchema(%s): %v", raw, err)
	}
	return rs
}

// checkFast holds fast to jsonschema-go on one input: never accept what the full path
// refuses, and accept everything it accepts once the input is canonical JSON (no
// duplicate keys, no escaped keys, shallow).
func checkFast(t *testing.T, schema string, rs *jsonschema.Resolved, fs *fastSchema, args []byte) {
	t.Helper()
	slowErr := validateArgs(rs, nil, args)
	fast := fs.accepts(args)
	if fast && slowErr != nil {
		t.Fatalf("schema %s, args %q: fast path accepts, jsonschema-go refuses: %v", schema, args, slowErr)
	}
	if slowErr != nil || fast {
		return
	}
	canon, ok := canonicalArgs(args)
	if !ok {
		return
	}
	if !fs.accepts(canon) {
		t.Fatalf("schema %s: jsonschema-go accepts canonical args %s, fast path does not", schema, canon)
	}
}

// canonicalArgs re-encodes args as the full path decoded them, or reports that the
// canonical form still holds something the fast path leaves to the full one.
func canonicalArgs(args []byte) ([]byte, bool) {
	if len(args) == 0 || string(args) == "null" {
		return []byte("{}"), true
	}
	var v any
	if codec.Unmarshal(args, &v) != nil || !plainKeys(v, 0) {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil || bytes.Contains(buf.Bytes(), []byte(`\ud`)) {
		return nil, false
	}
	return bytes.TrimSpace(buf.Bytes()), true
}

// plainKeys reports whether v nests at most fastMaxDepth-4 deep and no key needs escaping.
func plainKeys(v any, depth int) bool {
	if depth > fastMaxDepth-4 {
		return false
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if strings.ContainsAny(k, "\"\\\u2028\u2029") || strings.IndexFunc(k, func(r rune) bool { return r < 0x20 }) >= 0 || !plainKeys(e, depth+1) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !plainKeys(e, depth+1) {
				return false
			}
		}
	}
	return true
}

func TestFastSchemaCompiles(t *testing.T) {
	for _, raw := range fastSchemas {
		if compileFast(compileForTest(t, raw)) == nil {
			t.Errorf("compileFast refused a schema of its subset: %s", raw)
		}
	}
	for _, raw := range slowSchemas {
		if fs := compileFast(compileForTest(t, raw)); fs != nil {
			t.Errorf("compileFast took a schema outside its subset: %s", raw)
		}
	}
}

func TestFastSchemaDifferential(t *testing.T) {
	fastOK := 0
	for _, raw := range fastSchemas {
		rs := compileForTest(t, raw)
		fs := compileFast(rs)
		for _, in := range fastInputs {
			checkFast(t, raw, rs, fs, []byte(in))
			if fs.accepts([]byte(in)) {
				fastOK++
			}
		}
	}
	if fastOK < 200 { // the table must exercise acceptance, not only refusals
		t.Fatalf("fast path accepted only %d table cases", fastOK)
	}
}

// TestFastSchemaVerdicts pins verdicts and error messages of the full path for inputs
// the fast path refuses: the message names the fault.
func TestFastSchemaVerdicts(t *testing.T) {
	echo := `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`
	for _, c := range []struct {
		schema, args string
		fast         bool
		errHas       string // "" means valid
	}{
		{echo, `{"text":"hello"}`, true, ""},
		{echo, `{"text":"a\u00e9"}`, true, ""},
		{echo, `{"text":5}`, false, `"integer", want "string"`},
		{echo, `{}`, false, `missing properties: ["text"]`},
		{echo, `{"text":"a","x":1}`, false, `unexpected additional properties ["x"]`},
		{echo, `{"text":5,"text":"a"}`, false, ""}, // last key wins, as in the decoded map
		{echo, `{"te\u0078t":"hello"}`, false, ""},
		{echo, `[1]`, false, "must be a JSON object"},
		{echo, `{"text":"\ud800"}`, false, ""},
		{`{"type":"object","properties":{"n":{"type":"integer","maximum":10}}}`, `{"n":11}`, false, "maximum: 11/1 is greater than 10"},
		{`{"type":"object","properties":{"n":{"type":"integer"}}}`, `{"n":1e400}`, false, "arguments are not JSON"},
		{`{"type":"object","properties":{"n":{"type":"integer"}}}`, `{"n":2.0}`, true, ""},
		{`{"type":"object","properties":{"s":{"enum":["a","b"]}}}`, `{"s":"c"}`, false, "enum: c does not equal any of: [a b]"},
		{`{"type":"object","properties":{"s":{"type":"string","maxLength":2}}}`, `{"s":"abc"}`, false, "maxLength"},
	} {
		rs := compileForTest(t, c.schema)
		fs := compileFast(rs)
		if got := fs.accepts([]byte(c.args)); got != c.fast {
			t.Errorf("%s on %s: fast path accepts = %v, want %v", c.args, c.schema, got, c.fast)
		}
		err := validateArgs(rs, fs, json.RawMessage(c.args))
		switch {
		case c.errHas == "" && err != nil:
			t.Errorf("%s on %s: unexpected error %v", c.args, c.schema, err)
		case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s on %s: error %v, want one containing %q", c.args, c.schema, err, c.errHas)
		}
	}
}

// FuzzFastSchema: for any schema of the table and any bytes, the fast path never accepts
// what jsonschema-go refuses, and accepts the canonical form of what it accepts.
func FuzzFastSchema(f *testing.F) {
	for i := range fastSchemas {
		for _, in := range fastInputs {
			f.Add(uint8(i), []byte(in))
		}
	}
	type compiled struct {
		rs *jsonschema.Resolved
		fs *fastSchema
	}
	var cs []compiled
	for _, raw := range fastSchemas {
		rs := compileForTest(f, raw)
		cs = append(cs, compiled{rs, compileFast(rs)})
	}
	f.Fuzz(func(t *testing.T, k uint8, args []byte) {
		c := cs[int(k)%len(cs)]
		checkFast(t, fastSchemas[int(k)%len(cs)], c.rs, c.fs, args)
	})
}

func BenchmarkValidateArgs(b *testing.B) {
	rs := compileForTest(b, fastSchemas[3])
	fs := compileFast(rs)
	args := json.RawMessage(`{"text":"hello"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := validateArgs(rs, fs, args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsonschema-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := validateArgs(rs, nil, args); err != nil {
				b.Fatal(err)
			}
		}
	})
}
