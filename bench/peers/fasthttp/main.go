// Command fasthttp is the HTTP ceiling: a bare fasthttp handler that answers
// every POST with a canned JSON-RPC tools/call result (and initialize, so
// session-era clients work), doing no MCP work at all.
//
//	fasthttp -addr 127.0.0.1:18083
package main

import (
	"bytes"
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

var (
	canned = []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}`)
	inited = []byte(`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fasthttp-ceiling","version":"1.0.0"}}}`)
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18083", "listen address")
	flag.Parse()
	h := func(ctx *fasthttp.RequestCtx) {
		body := ctx.PostBody()
		switch {
		case !ctx.IsPost():
			ctx.SetStatusCode(fasthttp.StatusOK)
		case bytes.Contains(body, []byte(`"method":"notifications/`)):
			ctx.SetStatusCode(fasthttp.StatusAccepted)
		case bytes.Contains(body, []byte(`"method":"initialize"`)):
			ctx.SetContentType("application/json")
			ctx.SetBody(inited)
		default:
			ctx.SetContentType("application/json")
			ctx.SetBody(canned)
		}
	}
	log.Printf("fasthttp ceiling on http://%s/mcp", *addr)
	log.Fatal(fasthttp.ListenAndServe(*addr, h))
}
