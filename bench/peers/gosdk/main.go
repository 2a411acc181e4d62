// Command gosdk serves the echo fixture tool with modelcontextprotocol/go-sdk
// over Streamable HTTP on /mcp, by default in its fastest fair configuration:
// stateless, JSON responses (no SSE framing).
//
//	gosdk -addr 127.0.0.1:18082 [-stateless=false] [-json=false]
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoIn struct {
	Text string `json:"text" jsonschema:"text to echo"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18082", "listen address")
	stateless := flag.Bool("stateless", true, "StreamableHTTPOptions.Stateless: no Mcp-Session-Id")
	jsonResp := flag.Bool("json", true, "StreamableHTTPOptions.JSONResponse: application/json instead of text/event-stream")
	flag.Parse()
	s := mcp.NewServer(&mcp.Implementation{Name: "gosdk-peer", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo text back"},
		func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: *stateless, JSONResponse: *jsonResp})
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	log.Printf("go-sdk peer on http://%s/mcp (stateless %v, json %v)", *addr, *stateless, *jsonResp)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
