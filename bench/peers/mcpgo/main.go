// Command mcpgo serves the echo fixture tool with mark3labs/mcp-go over
// Streamable HTTP on /mcp.
//
//	mcpgo -addr 127.0.0.1:18081 [-stateless]
package main

import (
	"context"
	"flag"
	"log"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	stateless := flag.Bool("stateless", false, "no sessions (WithStateLess): every request is served without initialize")
	flag.Parse()
	s := server.NewMCPServer("mcpgo-peer", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Echo text back"), mcp.WithString("text", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("text", "")), nil
		})
	h := server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp"), server.WithStateLess(*stateless))
	log.Printf("mcp-go peer on http://%s/mcp (stateless %v)", *addr, *stateless)
	log.Fatal(h.Start(*addr))
}
