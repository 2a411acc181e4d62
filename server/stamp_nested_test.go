package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestStampResultOwnMembers: only the result object's own members decide whether it
// already says its resultType; the word anywhere else (a tool's structuredContent, a text,
// an array) must not suppress the stamp.
func TestStampResultOwnMembers(t *testing.T) {
	tests := []struct {
		name, msg, method string
		want              string
	}{
		{"nested in structuredContent", `{"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{"resultType":"x"}}}`, MethodToolsCall,
			`{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[],"structuredContent":{"resultType":"x"}}}`},
		{"in a string value", `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"\"resultType\":\"x\""}]}}`, MethodToolsCall,
			`{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"\"resultType\":\"x\""}]}}`},
		{"as a string value at the top", `{"jsonrpc":"2.0","id":1,"result":{"kind":"resultType"}}`, MethodToolsCall,
			`{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","kind":"resultType"}}`},
		{"in an array", `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"resultType":1}]}}`, MethodToolsList,
			`{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","ttlMs":0,"cacheScope":"public","tools":[{"resultType":1}]}}`},
		{"own member, not first", `{"jsonrpc":"2.0","id":1,"result":{"a":{"b":[1,{"c":"}"}]},"resultType":"input_required"}}`, MethodToolsCall,
			`{"jsonrpc":"2.0","id":1,"result":{"a":{"b":[1,{"c":"}"}]},"resultType":"input_required"}}`},
		{"own member, spaced", `{"jsonrpc":"2.0","id":1,"result":{ "resultType" : "complete"}}`, MethodToolsCall,
			`{"jsonrpc":"2.0","id":1,"result":{ "resultType" : "complete"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// With spare capacity the insertion happens in place; without, it grows.
			for _, spare := range []int{0, 128} {
				in := make([]byte, len(tt.msg), len(tt.msg)+spare)
				copy(in, tt.msg)
				if got := string(stampResult(in, tt.method, false)); got != tt.want {
					t.Errorf("spare %d: got  %s\nwant %s", spare, got, tt.want)
				}
			}
		})
	}
}

// TestStatelessCallStampedDespiteNestedResultType: a tool whose structuredContent has a
// resultType key still gets resultType "complete" on its 2026-07-28 result, end to end
// through the HTTP handler.
func TestStatelessCallStampedDespiteNestedResultType(t *testing.T) {
	s := newDemoServer(t, Config{})
	type out struct {
		ResultType string `json:"resultType"`
	}
	if err := AddTool(s, &Tool{Name: "typed", Description: "structured output with a resultType key"},
		func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, out, error) {
			return nil, out{ResultType: "mine"}, nil
		}); err != nil {
		t.Fatal(err)
	}
	h := s.NewHTTP(HTTPConfig{})
	t.Cleanup(h.Close)
	var ctx fasthttp.RequestCtx
	setStatelessCall(&ctx, strings.Replace(statelessCallBody, `"name":"echo","arguments":{"text":"hello"}`, `"name":"typed","arguments":{}`, 1))
	ctx.Request.Header.Set("Mcp-Name", "typed")
	h.Handler()(&ctx)
	var resp struct {
		Result struct {
			ResultType        string `json:"resultType"`
			StructuredContent out    `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &resp); err != nil {
		t.Fatalf("status %d, %s: %v", ctx.Response.StatusCode(), ctx.Response.Body(), err)
	}
	if resp.Result.ResultType != "complete" || resp.Result.StructuredContent.ResultType != "mine" {
		t.Fatalf("result %+v: want resultType complete and structuredContent.resultType mine; body %s", resp.Result, ctx.Response.Body())
	}
}
