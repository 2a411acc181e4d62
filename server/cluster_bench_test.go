//go:build !race

package server

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/erlmcp/erlmcp-go/server/cluster"
	"github.com/erlmcp/erlmcp-go/server/cluster/redistest"
)

// postSession serves one POST of body on session sid through h's handler, in memory (no
// socket: the cost measured is the server's), and returns the response body.
func postSession(h *HTTP, ctx *fasthttp.RequestCtx, sid, body string) []byte {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.SetRequestURI("/mcp")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		ctx.Request.Header.Set("Mcp-Session-Id", sid)
		ctx.Request.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	ctx.Request.SetBodyString(body)
	h.Handler()(ctx)
	return ctx.Response.Body()
}

// benchHTTP returns the HTTP side of a demo server, in cluster mode on r when r is not
// nil, and an initialized session id.
func benchHTTP(tb testing.TB, r *redistest.Server) (*HTTP, string) {
	tb.Helper()
	s := newDemoServer(tb, Config{})
	if r != nil {
		c, err := s.EnableCluster(cluster.Config{RedisURL: r.URL(), Node: "bench", KeyPrefix: "bench:", Heartbeat: 50 * time.Millisecond})
		if err != nil {
			tb.Fatal(err)
		}
		c.Start()
		tb.Cleanup(func() { c.Close(context.Background()) })
	}
	h := s.NewHTTP(HTTPConfig{})
	tb.Cleanup(h.Close)
	var ctx fasthttp.RequestCtx
	postSession(h, &ctx, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`)
	sid := string(ctx.Response.Header.Peek("Mcp-Session-Id"))
	if sid == "" {
		tb.Fatalf("initialize: %s", ctx.Response.Body())
	}
	postSession(h, &ctx, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return h, sid
}

const benchCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`

// TestClusterAddsNoAllocations: a session-era POST costs the same allocations with cluster
// mode on as off — a request on a session held here touches Redis only through the
// writer's queue, at most once per TTL/4 (and with it off the hooks are nil checks).
func TestClusterAddsNoAllocations(t *testing.T) {
	allocs := func(h *HTTP, sid string) float64 {
		var ctx fasthttp.RequestCtx
		if b := postSession(h, &ctx, sid, benchCall); !bytes.Contains(b, []byte(`"text":"hi"`)) {
			t.Fatalf("tools/call: %s", b)
		}
		return testing.AllocsPerRun(500, func() { postSession(h, &ctx, sid, benchCall) })
	}
	off := allocs(benchHTTP(t, nil))
	on := allocs(benchHTTP(t, redistest.Start(t)))
	if on > off {
		t.Fatalf("a POST allocates %.1f times in cluster mode, %.1f without", on, off)
	}
}

// BenchmarkHTTPSessionPost is a session-era tools/call POST through the handler, with
// cluster mode off and on (same machine, same run: the ratio is what counts).
func BenchmarkHTTPSessionPost(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run("cluster="+mode, func(b *testing.B) {
			var r *redistest.Server
			if mode == "on" {
				r = redistest.Start(b)
			}
			h, sid := benchHTTP(b, r)
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				postSession(h, &ctx, sid, benchCall)
			}
		})
	}
}
