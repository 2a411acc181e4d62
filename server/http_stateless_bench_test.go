package server

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// statelessCallBody is a 2026-07-28 tools/call as bench/wrk/mcp_tools_call.lua and
// `erlmcp bench --transport http --stateless` send it.
const statelessCallBody = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},` +
	`"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1.0.0"}}}}`

// setStatelessCall fills ctx with a stateless tools/call POST carrying the headers a
// 2026-07-28 client sends (protocol version, routing headers, Accept, Content-Type).
func setStatelessCall(ctx *fasthttp.RequestCtx, body string) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.SetRequestURI("/mcp")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.SetHost("127.0.0.1:8080")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.Header.Set("Accept", "application/json, text/event-stream")
	ctx.Request.Header.Set("MCP-Protocol-Version", "2026-07-28")
	ctx.Request.Header.Set("Mcp-Method", "tools/call")
	ctx.Request.Header.Set("Mcp-Name", "echo")
	ctx.Request.SetBodyString(body)
}

// BenchmarkHTTPStatelessToolsCall is the server's cost of one stateless /mcp tools/call
// (echo) through the HTTP handler, in memory: no socket, so what it measures is ours
// (routing, header checks, decode, dispatch, encode, stamping), not the kernel's.
//
//	go test -run '^$' -bench HTTPStatelessToolsCall -benchmem ./server/
func BenchmarkHTTPStatelessToolsCall(b *testing.B) {
	h := newDemoServer(b, Config{}).NewHTTP(HTTPConfig{DNSRebindingProtection: true})
	b.Cleanup(h.Close)
	var ctx fasthttp.RequestCtx
	setStatelessCall(&ctx, statelessCallBody)
	h.Handler()(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusOK || !bytes.Contains(ctx.Response.Body(), []byte(`"resultType":"complete"`)) {
		b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx.Response.Reset()
		h.Handler()(&ctx)
	}
}
