package server

import (
	"reflect"
	"testing"

	"github.com/erlmcp/erlmcp-go/codec"
)

// statelessParamsInputs are params of stateless requests: the common shapes the walk
// takes and the ones it must leave to sonic.
var statelessParamsInputs = []string{
	`{"name":"echo","arguments":{"text":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1.0.0"}}}`,
	`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{ "uri" : "file:///a.txt" , "_meta" : { "io.modelcontextprotocol/protocolVersion" : "2026-07-28" , "io.modelcontextprotocol/clientCapabilities" : { } } }`,
	`{"taskId":"t1","_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{"sampling":{},"roots":{"listChanged":true}},"io.modelcontextprotocol/logLevel":"debug"}}`,
	`{"name":"add","arguments":{"a":1,"b":2},"cursor":"x","_meta":{"progressToken":7,"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"a=b","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"x-other":[1,{"y":null}]}}`,
	`{"name":"echo","arguments":null,"_meta":{"progressToken":"tok","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{}`,
	`{"name":"echo"}`,
	`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","title":"C","version":"1","description":"d","websiteUrl":"https://x"}}}`,
	`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1","icons":[{"src":"https://x/i.png"}],"extra":1}}}`,
	`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"NAME":"c","version":"\u0031","name":"d"}}}`,
	// Left to sonic: MRTR retries, escapes, case-folded keys, duplicates, wrong types, null.
	`{"name":"echo","requestState":"abc","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{"name":"echo","inputResponses":{"k":{}},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{"name":"e\u0063ho","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{"NAME":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{"name":"echo","_META":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`,
	`{"name":"a","name":"b","_meta":{}}`,
	`{"name":5,"_meta":{}}`,
	`{"name":"echo","_meta":null}`,
	`{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":null}}`,
	`{"name":"echo","_meta":{"io.modelcontextprotocol/clientCapabilities":[]}}`,
	`{"name":"echo","_meta":{"io.modelcontextprotocol/clientInfo":{"name":3}}}`,
	`{"name":"echo","_meta":{"traceparent":5}}`,
	`{"name":"echo","_meta":{"IO.modelcontextprotocol/protocolVersion":"2026-07-28"}}`,
	`{"name":"echo","_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}},"io.modelcontextprotocol/clientCapabilities":{}}}`,
	`{"name":"echo",}`,
	`{"name":"echo"} x`,
	`[1]`,
	`{"name":"\xff"}`,
}

// checkStatelessParams fails t when the walk accepts in but reads something else than
// sonic (statelessParams for the transport, paramsMeta for dispatch's versionFor).
func checkStatelessParams(t *testing.T, in []byte) {
	t.Helper()
	var p statelessParams
	var rd statelessRead
	if !fastStatelessParams(in, &p, &rd) {
		return
	}
	rm := rd.meta
	var want statelessParams
	if err := codec.Unmarshal(in, &want); err != nil {
		t.Fatalf("%s: walk accepted what sonic refuses: %v", in, err)
	}
	if string(p.Arguments) != string(want.Arguments) {
		t.Fatalf("%s: arguments %s, sonic %s", in, p.Arguments, want.Arguments)
	}
	args := want.Arguments
	p.Arguments, want.Arguments = nil, nil
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("%s: walk %+v (meta %+v), sonic %+v (meta %+v)", in, p, p.Meta, want, want.Meta)
	}
	// tools/call takes name and arguments from the walk (decodeCallParams).
	var call CallToolParams
	if err := codec.Unmarshal(in, &call); err != nil {
		t.Fatalf("%s: walk accepted what the tools/call decode refuses: %v", in, err)
	}
	if call.Name != p.Name || string(call.Arguments) != string(args) {
		t.Fatalf("%s: walk name %q, sonic's tools/call params %+v", in, p.Name, call)
	}
	var wantMeta paramsMeta
	if err := codec.Unmarshal(in, &wantMeta); err != nil {
		t.Fatalf("%s: walk accepted what versionFor's decode refuses: %v", in, err)
	}
	if p.Meta != nil && !reflect.DeepEqual(&rm, wantMeta.Meta) {
		t.Fatalf("%s: walk's request meta %+v, sonic %+v", in, rm, wantMeta.Meta)
	}
}

func TestStatelessParamsDifferential(t *testing.T) {
	fast := 0
	for _, in := range statelessParamsInputs {
		checkStatelessParams(t, []byte(in))
		var p statelessParams
		if fastStatelessParams([]byte(in), &p, new(statelessRead)) {
			fast++
		}
	}
	if fast < 8 {
		t.Fatalf("the walk took only %d of the table's params", fast)
	}
	// The request every stateless benchmark sends takes the walk.
	var p statelessParams
	if !fastStatelessParams([]byte(statelessParamsInputs[0]), &p, new(statelessRead)) || p.Name != "echo" {
		t.Fatalf("common tools/call params not taken by the walk: %+v", p)
	}
}

func FuzzStatelessParams(f *testing.F) {
	for _, in := range statelessParamsInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkStatelessParams(t, in) })
}
