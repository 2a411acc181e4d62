package server

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// EchoArgs is the input of the demo tool echo.
type EchoArgs struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// AddArgs is the input of the demo tool add.
type AddArgs struct {
	A float64 `json:"a" jsonschema:"first addend"`
	B float64 `json:"b" jsonschema:"second addend"`
}

// AddResult is the structured output of the demo tool add.
type AddResult struct {
	Sum float64 `json:"sum" jsonschema:"a + b"`
}

// SleepArgs is the input of the demo tool sleep.
type SleepArgs struct {
	Ms    int  `json:"ms" jsonschema:"how long to work, in milliseconds (at most 60000)"`
	Steps int  `json:"steps,omitempty" jsonschema:"progress notifications to send while working (default 0)"`
	Busy  bool `json:"busy,omitempty" jsonschema:"burn CPU for ms instead of waiting (a CPU-bound tool, for load tests)"`
}

// DemoReadme is the text of the demo resource erlmcp://demo/readme.
const DemoReadme = "erlmcp-go demo resource: this server answers MCP over newline-delimited JSON-RPC on TCP, stdio and HTTP.\n"

// DemoNoteURI is the demo's subscribable resource: write_note sets its text and raises
// notifications/resources/updated for it (to every node's subscribers in cluster mode).
const DemoNoteURI = "erlmcp://demo/note"

// WriteNoteArgs is the input of the demo tool write_note.
type WriteNoteArgs struct {
	Text string `json:"text" jsonschema:"the note's new text"`
}

// RegisterDemo registers the built-in demo tools, resources and prompts, so a fresh
// install answers tools/list, resources/list and prompts/list with something real:
//   - tools echo {text}, add {a, b}, time {}, sleep {ms, steps, busy}, write_note {text}
//   - resources erlmcp://demo/readme and erlmcp://demo/note (subscribe to it, then call
//     write_note), template erlmcp://demo/greeting/{name}
//   - prompt greet {name (required), style} with completion of style
func RegisterDemo(s *Server) error {
	yes := true
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	add(AddToolWith(s, &Tool{
		Name: "echo", Title: "Echo", Description: "Returns its text argument unchanged.",
		Annotations: &ToolAnnotations{ReadOnlyHint: &yes, IdempotentHint: &yes},
	}, ToolOptions{Inline: true}, func(ctx context.Context, r *Request, in EchoArgs) (*CallToolResult, any, error) {
		return &CallToolResult{Content: []Content{Text(in.Text)}}, nil, nil
	}))
	add(AddToolWith(s, &Tool{
		Name: "add", Title: "Add", Description: "Adds two numbers.",
		Annotations: &ToolAnnotations{ReadOnlyHint: &yes, IdempotentHint: &yes},
	}, ToolOptions{Inline: true}, func(ctx context.Context, r *Request, in AddArgs) (*CallToolResult, AddResult, error) {
		return nil, AddResult{Sum: in.A + in.B}, nil
	}))
	add(AddToolWith(s, &Tool{
		Name: "time", Title: "Server time", Description: "Returns the server's current time (RFC 3339, UTC).",
		Annotations: &ToolAnnotations{ReadOnlyHint: &yes},
	}, ToolOptions{Inline: true}, func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, any, error) {
		return &CallToolResult{Content: []Content{Text(time.Now().UTC().Format(time.RFC3339Nano))}}, nil, nil
	}))
	add(AddTool(s, &Tool{
		Name: "sleep", Title: "Sleep", Description: "Works for ms milliseconds, reporting progress; honours cancellation. Runs on a worker, never blocking other requests.",
	}, func(ctx context.Context, r *Request, in SleepArgs) (*CallToolResult, any, error) {
		d := time.Duration(min(max(in.Ms, 0), 60000)) * time.Millisecond
		steps := min(max(in.Steps, 0), 1000)
		if steps == 0 {
			steps = 1
		}
		for i := 1; i <= steps; i++ {
			if in.Busy {
				if err := burnCPU(ctx, d/time.Duration(steps)); err != nil {
					return nil, nil, err
				}
			} else {
				select {
				case <-time.After(d / time.Duration(steps)):
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				}
			}
			if in.Steps > 0 {
				_ = r.Progress(float64(i), float64(steps), fmt.Sprintf("step %d of %d", i, steps))
			}
		}
		return &CallToolResult{Content: []Content{Text(fmt.Sprintf("slept %dms", d.Milliseconds()))}}, nil, nil
	}))

	add(s.AddResource(&Resource{
		URI: "erlmcp://demo/readme", Name: "readme", Title: "Demo readme", MimeType: "text/plain",
		Description: "A short text about this server.",
	}, ResourceOptions{Inline: true}, func(ctx context.Context, r *Request, uri string, _ map[string]string) (*ReadResourceResult, error) {
		return &ReadResourceResult{Contents: []*ResourceContents{{URI: uri, MimeType: "text/plain", Text: DemoReadme}}}, nil
	}))
	// The note's text on this node; in cluster mode the cluster's (Cluster.SetValue), so
	// a read on any node sees what write_note wrote on another.
	var note atomic.Pointer[string]
	empty := ""
	note.Store(&empty)
	add(s.AddResource(&Resource{
		URI: DemoNoteURI, Name: "note", Title: "Demo note", MimeType: "text/plain",
		Description: "A note set by the write_note tool; subscribe to hear when it changes.",
	}, ResourceOptions{}, func(ctx context.Context, r *Request, uri string, _ map[string]string) (*ReadResourceResult, error) {
		text := *note.Load()
		if c := s.Cluster(); c != nil { // the cluster's note; this node's while Redis is down
			if b, err := c.Value(ctx, "demo_note"); err == nil {
				text = string(b)
			}
		}
		return &ReadResourceResult{Contents: []*ResourceContents{{URI: uri, MimeType: "text/plain", Text: text}}}, nil
	}))
	add(AddToolWith(s, &Tool{
		Name: "write_note", Title: "Write the note", Description: "Sets the text of " + DemoNoteURI + " and notifies its subscribers (on every node, in cluster mode).",
		Annotations: &ToolAnnotations{IdempotentHint: &yes},
	}, ToolOptions{}, func(ctx context.Context, r *Request, in WriteNoteArgs) (*CallToolResult, any, error) {
		text := in.Text
		note.Store(&text)
		if c := s.Cluster(); c != nil {
			if err := c.SetValue(ctx, "demo_note", []byte(text)); err != nil {
				s.log.Warn("demo: the note reaches only this node while Redis is down", "err", err)
			}
		}
		s.ResourceUpdated(DemoNoteURI)
		return &CallToolResult{Content: []Content{Text(fmt.Sprintf("note written (%d bytes)", len(text)))}}, nil, nil
	}))
	add(s.AddResourceTemplate(&ResourceTemplate{
		URITemplate: "erlmcp://demo/greeting/{name}", Name: "greeting", Title: "Greeting", MimeType: "text/plain",
		Description: "A greeting for {name}.",
	}, ResourceOptions{Inline: true}, func(ctx context.Context, r *Request, uri string, vars map[string]string) (*ReadResourceResult, error) {
		return &ReadResourceResult{Contents: []*ResourceContents{{URI: uri, MimeType: "text/plain", Text: "Hello, " + vars["name"] + "!"}}}, nil
	}))

	styles := []string{"casual", "formal", "pirate"}
	add(s.AddPrompt(&Prompt{
		Name: "greet", Title: "Greet someone", Description: "Asks the model to greet a person.",
		Arguments: []*PromptArgument{
			{Name: "name", Description: "who to greet", Required: true},
			{Name: "style", Description: "casual, formal or pirate"},
		},
	}, func(ctx context.Context, r *Request, args map[string]string) (*GetPromptResult, error) {
		style := args["style"]
		if style == "" {
			style = "casual"
		}
		return &GetPromptResult{
			Description: "Greeting for " + args["name"],
			Messages:    []*PromptMessage{{Role: "user", Content: Text(fmt.Sprintf("Please greet %s in a %s style.", args["name"], style))}},
		}, nil
	}))
	s.SetCompletionHandler(func(ctx context.Context, r *Request, p *CompleteParams) (*CompleteResult, error) {
		var vals []string
		if p.Ref.Type == "ref/prompt" && p.Ref.Name == "greet" && p.Argument.Name == "style" {
			for _, st := range styles {
				if strings.HasPrefix(st, p.Argument.Value) {
					vals = append(vals, st)
				}
			}
		}
		return &CompleteResult{Completion: Completion{Values: vals, Total: len(vals)}}, nil
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// burnSink keeps burnCPU's arithmetic from being optimised away.
var burnSink atomic.Uint64

// burnCPU keeps the calling goroutine on the CPU for d (wall clock), checking ctx between
// short bursts.
func burnCPU(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := 0; i < 2000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	burnSink.Add(x)
	return nil
}
