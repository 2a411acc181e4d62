// Command weather is an MCP server built with the erlmcp-go library: one typed tool, one
// resource template and one prompt, served over TCP (default 127.0.0.1:8090) or stdio.
//
//	go run ./examples/weather                # TCP
//	go run ./examples/weather -stdio         # stdio, for clients that spawn servers
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/erlmcp/erlmcp-go/loop"
	"github.com/erlmcp/erlmcp-go/server"
)

// ForecastIn is the input of the forecast tool; its JSON Schema is derived from the tags.
type ForecastIn struct {
	City string `json:"city" jsonschema:"the city to forecast"`
	Days int    `json:"days,omitempty" jsonschema:"how many days (1-7), default 1"`
}

// ForecastOut is the structured output of the forecast tool.
type ForecastOut struct {
	City  string    `json:"city"`
	TempC []float64 `json:"tempC" jsonschema:"one temperature per day"`
}

func newServer() *server.Server {
	s := server.New(server.Config{Name: "weather", Version: "1.0.0", Instructions: "Ask for forecasts by city."})
	must(server.AddTool(s, &server.Tool{Name: "forecast", Description: "Daily temperature forecast."},
		func(ctx context.Context, r *server.Request, in ForecastIn) (*server.CallToolResult, ForecastOut, error) {
			days := min(max(in.Days, 1), 7)
			out := ForecastOut{City: in.City}
			for i := range days {
				_ = r.Progress(float64(i+1), float64(days), "computing day "+fmt.Sprint(i+1))
				out.TempC = append(out.TempC, 15+float64(len(in.City)%7)+float64(i)/2)
			}
			return nil, out, nil
		}))
	must(s.AddResourceTemplate(&server.ResourceTemplate{URITemplate: "weather://city/{name}", Name: "city", MimeType: "text/plain"},
		server.ResourceOptions{Inline: true},
		func(ctx context.Context, r *server.Request, uri string, vars map[string]string) (*server.ReadResourceResult, error) {
			return &server.ReadResourceResult{Contents: []*server.ResourceContents{{URI: uri, MimeType: "text/plain", Text: "Station data for " + strings.ToUpper(vars["name"])}}}, nil
		}))
	must(s.AddPrompt(&server.Prompt{Name: "packing", Arguments: []*server.PromptArgument{{Name: "city", Required: true}}},
		func(ctx context.Context, r *server.Request, args map[string]string) (*server.GetPromptResult, error) {
			return &server.GetPromptResult{Messages: []*server.PromptMessage{{Role: "user", Content: server.Text("What should I pack for " + args["city"] + "?")}}}, nil
		}))
	return s
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "TCP listen address")
	stdio := flag.Bool("stdio", false, "serve one session on stdin/stdout instead of TCP")
	flag.Parse()
	s := newServer()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *stdio {
		if err := s.ServeStdio(ctx, os.Stdin, os.Stdout, 0); err != nil {
			log.Fatal(err)
		}
		return
	}
	ln, err := loop.Listen(loop.Config{Addr: *addr, Handler: s.LineHandler()})
	if err != nil {
		log.Fatal(err)
	}
	go ln.Serve()
	log.Printf("weather MCP server on %s", ln.Addr())
	<-ctx.Done()
	_ = ln.Shutdown(context.Background())
	_ = s.Shutdown(context.Background())
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
