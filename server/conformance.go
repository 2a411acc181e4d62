package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
)

// RegisterConformance registers the fixtures the official MCP conformance suite expects
// (server.profile: conformance): the tools, resources and prompts its scenarios call, for
// both protocol eras. They are served by the real server like any other registration;
// the names and texts follow the suite's scenario descriptions and its reference
// everything-server.
func RegisterConformance(s *Server) error {
	for _, f := range []func(*Server) error{conformanceTools, conformanceMRTR, conformanceTasks, conformanceResources, conformancePrompts} {
		if err := f(s); err != nil {
			return fmt.Errorf("conformance fixtures: %w", err)
		}
	}
	return nil
}

// Minimal media the suite checks for shape only.
const (
	conformancePNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	conformanceWAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
)

func textResult(s string) *CallToolResult { return &CallToolResult{Content: []Content{Text(s)}} }

// fixed returns a handler that always answers res.
func fixed(res *CallToolResult) ToolHandler {
	return func(context.Context, *Request, json.RawMessage) (*CallToolResult, error) { return res, nil }
}

func conformanceTools(s *Server) error {
	type tool struct {
		t    Tool
		opts ToolOptions
		h    ToolHandler
	}
	sleep := func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	tools := []tool{
		{t: Tool{Name: "test_simple_text", Description: "Tests simple text content response"},
			h: fixed(textResult("This is a simple text response for testing."))},
		{t: Tool{Name: "test_image_content", Description: "Tests image content response"},
			h: fixed(&CallToolResult{Content: []Content{Image(conformancePNG, "image/png")}})},
		{t: Tool{Name: "test_audio_content", Description: "Tests audio content response"},
			h: fixed(&CallToolResult{Content: []Content{Audio(conformanceWAV, "audio/wav")}})},
		{t: Tool{Name: "test_embedded_resource", Description: "Tests embedded resource content response"},
			h: fixed(&CallToolResult{Content: []Content{Embedded(&ResourceContents{URI: "test://embedded-resource", MimeType: "text/plain", Text: "This is an embedded resource content."})}})},
		{t: Tool{Name: "test_multiple_content_types", Description: "Tests response with multiple content types (text, image, resource)"},
			h: fixed(&CallToolResult{Content: []Content{
				Text("Multiple content types test:"),
				Image(conformancePNG, "image/png"),
				Embedded(&ResourceContents{URI: "test://mixed-content-resource", MimeType: "application/json", Text: `{"test":"data","value":123}`}),
			}})},
		{t: Tool{Name: "test_tool_with_logging", Description: "Tests tool that emits log messages during execution"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				for i, msg := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
					if i > 0 {
						if err := sleep(ctx, 50*time.Millisecond); err != nil {
							return nil, err
						}
					}
					_ = r.Log(LevelInfo, "conformance", msg)
				}
				return textResult("Tool with logging executed successfully"), nil
			}},
		{t: Tool{Name: "test_tool_with_progress", Description: "Tests tool that reports progress notifications"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				for _, p := range []float64{0, 50, 100} {
					_ = r.Progress(p, 100, fmt.Sprintf("Completed step %.0f of 100", p))
					if err := sleep(ctx, 50*time.Millisecond); err != nil {
						return nil, err
					}
				}
				tok := string(r.ProgressToken())
				var str string
				if codec.Unmarshal(r.ProgressToken(), &str) == nil {
					tok = str
				}
				return textResult(tok), nil
			}},
		{t: Tool{Name: "test_error_handling", Description: "Tests error response handling"},
			h: fixed(&CallToolResult{IsError: true, Content: []Content{Text("This tool intentionally returns an error for testing")}})},
		{t: Tool{Name: "test_sampling", Description: "Tests server-initiated sampling (LLM completion request)",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"prompt":{"type":"string","description":"The prompt to send to the LLM"}},"required":["prompt"]}`)},
			h: func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
				var in struct {
					Prompt string `json:"prompt"`
				}
				_ = codec.Unmarshal(args, &in)
				res, err := r.CreateMessage(ctx, &CreateMessageParams{
					Messages:  []*SamplingMessage{{Role: "user", Content: Text(in.Prompt)}},
					MaxTokens: 100,
				})
				if err != nil {
					return nil, err
				}
				text := "(non-text response)"
				if tc, ok := res.Content.(*TextContent); ok {
					text = tc.Text
				}
				return textResult("LLM response: " + text), nil
			}},
		{t: Tool{Name: "test_elicitation", Description: "Tests server-initiated elicitation (user input request)",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"message":{"type":"string","description":"The message to show the user"}},"required":["message"]}`)},
			h: func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
				var in struct {
					Message string `json:"message"`
				}
				_ = codec.Unmarshal(args, &in)
				return elicitResult(ctx, r, &ElicitParams{Message: in.Message,
					RequestedSchema: json.RawMessage(`{"type":"object","properties":{"username":{"type":"string","description":"Your preferred username"},"email":{"type":"string","description":"Your email address"}},"required":["username","email"]}`)})
			}},
		{t: Tool{Name: "test_elicitation_sep1034_defaults", Description: "Tests elicitation with default values per SEP-1034"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				return elicitResult(ctx, r, &ElicitParams{Message: "Test defaults for primitives", RequestedSchema: json.RawMessage(`{"type":"object","properties":{` +
					`"name":{"type":"string","description":"User name","default":"John Doe"},` +
					`"age":{"type":"integer","description":"User age","default":30},` +
					`"score":{"type":"number","description":"User score","default":95.5},` +
					`"status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},` +
					`"verified":{"type":"boolean","description":"Verification status","default":true}}}`)})
			}},
		{t: Tool{Name: "test_elicitation_sep1330_enums", Description: "Tests elicitation with enum schema improvements per SEP-1330"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				return elicitResult(ctx, r, &ElicitParams{Message: "Test enum schemas", RequestedSchema: json.RawMessage(`{"type":"object","properties":{` +
					`"untitledSingle":{"type":"string","enum":["option1","option2","option3"]},` +
					`"titledSingle":{"type":"string","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},` +
					`"legacyEnum":{"type":"string","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},` +
					`"untitledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","enum":["option1","option2","option3"]}},` +
					`"titledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"anyOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]}}}}`)})
			}},
		{t: Tool{Name: "json_schema_2020_12_tool", Description: "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613, SEP-2106)",
			InputSchema: json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},"additionalProperties":false}`)},
			opts: ToolOptions{NoValidation: true},
			h: func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
				return textResult("JSON Schema 2020-12 tool called with: " + string(args)), nil
			}},
		{t: Tool{Name: "test_reconnection", Description: "Tests SSE stream disconnection and client reconnection (SEP-1699): the server closes the stream mid-call and sends the result after the client reconnects."},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				r.CloseSSEStream(10 * time.Millisecond)
				if err := sleep(ctx, 100*time.Millisecond); err != nil {
					return nil, err
				}
				return textResult("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure."), nil
			}},
		{t: Tool{Name: "test_x_mcp_header", Description: "Tests SEP-2243 Mcp-Param-* server-side validation",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","description":"mirrored into Mcp-Param-Region","x-mcp-header":"Region"},"level":{"type":"integer","description":"non-mirrored argument"}}}`)},
			opts: ToolOptions{NoValidation: true},
			h: func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
				var in struct {
					Region string `json:"region"`
				}
				_ = codec.Unmarshal(args, &in)
				return textResult("region=" + in.Region), nil
			}},
		{t: Tool{Name: "test_missing_capability", Description: "Requires the sampling client capability; answers -32021 (MissingRequiredClientCapability) when it is not declared (SEP-2575)"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				if caps := r.ClientCapabilities(); caps != nil && caps.Sampling != nil {
					return textResult("Client declared the sampling capability; tool executed."), nil
				}
				return nil, codec.NewError(codec.CodeMissingClientCapability, "this tool needs the sampling client capability, which the client did not declare").
					WithData(map[string]any{"requiredCapabilities": map[string]any{"sampling": map[string]any{}}})
			}},
		{t: Tool{Name: "test_streaming_elicitation", Description: "Answers with result frames only, never an independent JSON-RPC request on the response stream (SEP-2575)"},
			h: fixed(textResult("stream observed: result frames only, no top-level requests"))},
		{t: Tool{Name: "test_logging_tool", Description: "Attempts to log; the message is dropped unless the client set _meta io.modelcontextprotocol/logLevel (SEP-2575)"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				_ = r.Log(LevelInfo, "conformance", "test_logging_tool executed")
				return textResult("Log attempted; gated on the client's log level."), nil
			}},
		{t: Tool{Name: "test_trigger_tool_change", Description: "Mutates the tool list to trigger notifications/tools/list_changed (SEP-2575)"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				err := s.AddTool(&Tool{Name: "__transient_tool_for_list_changed", Description: "Transient tool used to trigger tools/list_changed"}, ToolOptions{Inline: true}, fixed(textResult("")))
				if err != nil {
					return nil, err
				}
				return textResult("tools_list_changed published"), nil
			}},
		{t: Tool{Name: "test_trigger_prompt_change", Description: "Mutates the prompt list to trigger notifications/prompts/list_changed (SEP-2575)"},
			h: func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				err := s.AddPrompt(&Prompt{Name: "__transient_prompt_for_list_changed", Description: "Transient prompt used to trigger prompts/list_changed"},
					func(context.Context, *Request, map[string]string) (*GetPromptResult, error) {
						return &GetPromptResult{}, nil
					})
				if err != nil {
					return nil, err
				}
				return textResult("prompts_list_changed published"), nil
			}},
	}
	for i := range tools {
		if err := s.AddTool(&tools[i].t, tools[i].opts, tools[i].h); err != nil {
			return err
		}
	}
	return nil
}

func elicitResult(ctx context.Context, r *Request, p *ElicitParams) (*CallToolResult, error) {
	res, err := r.Elicit(ctx, p)
	if err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("Elicitation result: action=%s, content=%v", res.Action, res.Content)), nil
}

// ---- multi round-trip (input-required) fixtures, 2026-07-28 ----

const nameSchema = `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`

func elicitInput(message, schema string) InputRequest {
	return InputRequest{Method: MethodElicitationCreate, Params: &ElicitParams{Mode: "form", Message: message, RequestedSchema: json.RawMessage(schema)}}
}

func samplingInput(text string, maxTokens int) InputRequest {
	return InputRequest{Method: MethodSamplingCreateMessage, Params: &CreateMessageParams{
		Messages: []*SamplingMessage{{Role: "user", Content: Text(text)}}, MaxTokens: maxTokens}}
}

var rootsInput = InputRequest{Method: MethodRootsList, Params: struct{}{}}

// accepted returns the content of an accepted elicitation response under key, or nil.
func accepted(r *Request, key string) map[string]any {
	var er ElicitResult
	if !r.InputResponse(key, &er) || er.Action != "accept" {
		return nil
	}
	if er.Content == nil {
		return map[string]any{}
	}
	return er.Content
}

func sampledText(r *Request, key string) (string, bool) {
	var cr CreateMessageResult
	if !r.InputResponse(key, &cr) {
		return "", false
	}
	if tc, ok := cr.Content.(*TextContent); ok {
		return tc.Text, true
	}
	return "(non-text response)", true
}

func conformanceMRTR(s *Server) error {
	add := func(name, desc string, h ToolHandler) error {
		return s.AddTool(&Tool{Name: name, Description: desc}, ToolOptions{}, h)
	}
	errs := []error{
		add("test_input_required_result_elicitation", "MRTR (SEP-2322): asks for the caller name via an in-band elicitation request",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				if name, _ := accepted(r, "user_name")["name"].(string); name != "" {
					return textResult("Hello, " + name + "!"), nil
				}
				return nil, &InputRequired{Requests: map[string]InputRequest{"user_name": elicitInput("What is your name?", nameSchema)}}
			}),
		add("test_input_required_result_sampling", "MRTR (SEP-2322): asks for an LLM completion via an in-band sampling request",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				if text, ok := sampledText(r, "capital_question"); ok {
					return textResult("Sampling response: " + text), nil
				}
				return nil, &InputRequired{Requests: map[string]InputRequest{"capital_question": samplingInput("What is the capital of France?", 100)}}
			}),
		add("test_input_required_result_list_roots", "MRTR (SEP-2322): asks for the client roots via an in-band roots/list request",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				var lr ListRootsResult
				if r.InputResponse("client_roots", &lr) {
					uris := make([]string, 0, len(lr.Roots))
					for _, rt := range lr.Roots {
						uris = append(uris, rt.URI)
					}
					return textResult(fmt.Sprintf("Client exposed %d root(s): %s", len(lr.Roots), strings.Join(uris, ", "))), nil
				}
				return nil, &InputRequired{Requests: map[string]InputRequest{"client_roots": rootsInput}}
			}),
		add("test_input_required_result_request_state", "MRTR (SEP-2322): round-trips integrity-protected requestState alongside an elicitation request",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				if accepted(r, "confirm") != nil {
					if r.RequestState() == "request_state" {
						return textResult("state-ok: requestState received and confirmation accepted"), nil
					}
					return nil, codec.NewError(codec.CodeInvalidParams, "invalid or missing requestState")
				}
				return nil, &InputRequired{State: "request_state", Requests: map[string]InputRequest{
					"confirm": elicitInput("Please confirm", `{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)}}
			}),
		add("test_input_required_result_multiple_inputs", "MRTR (SEP-2322): asks for elicitation, sampling and roots input in a single round",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				name, _ := accepted(r, "user_name")["name"].(string)
				greeting, hasGreeting := sampledText(r, "greeting")
				var lr ListRootsResult
				hasRoots := r.InputResponse("client_roots", &lr)
				if name != "" && hasGreeting && hasRoots {
					return textResult(fmt.Sprintf("%s %s — %d root(s) visible", greeting, name, len(lr.Roots))), nil
				}
				return nil, &InputRequired{State: "multiple_inputs", Requests: map[string]InputRequest{
					"user_name":    elicitInput("What is your name?", nameSchema),
					"greeting":     samplingInput("Generate a greeting", 50),
					"client_roots": rootsInput,
				}}
			}),
		add("test_input_required_result_multi_round", "MRTR (SEP-2322): two elicitation rounds with evolving requestState before completing",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				state := r.RequestState()
				switch {
				case state == "":
					return nil, &InputRequired{State: "round=1", Requests: map[string]InputRequest{"step1": elicitInput("Step 1: What is your name?", nameSchema)}}
				case state == "round=1":
					name, _ := accepted(r, "step1")["name"].(string)
					if name == "" {
						name = "unknown"
					}
					return nil, &InputRequired{State: "round=2;name=" + name, Requests: map[string]InputRequest{
						"step2": elicitInput("Step 2: What is your favorite color?", `{"type":"object","properties":{"color":{"type":"string"}},"required":["color"]}`)}}
				default:
					color, _ := accepted(r, "step2")["color"].(string)
					if color == "" {
						color = "unknown"
					}
					return textResult(fmt.Sprintf("Multi-round complete: %s likes %s", strings.TrimPrefix(state, "round=2;name="), color)), nil
				}
			}),
		add("test_input_required_result_tampered_state", "MRTR (SEP-2322): rejects retries whose requestState fails integrity verification",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				if r.RequestState() == "tampered_state" && accepted(r, "confirm") != nil {
					return textResult("state-ok: requestState received and confirmation accepted"), nil
				}
				return nil, &InputRequired{State: "tampered_state", Requests: map[string]InputRequest{
					"confirm": elicitInput("Please confirm", `{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)}}
			}),
		add("test_input_required_result_capabilities", "MRTR (SEP-2322): only requests input kinds the declared client capabilities cover",
			func(ctx context.Context, r *Request, _ json.RawMessage) (*CallToolResult, error) {
				if len(r.InputResponses()) > 0 {
					return textResult("Capability-aware input requests fulfilled"), nil
				}
				caps := r.ClientCapabilities()
				reqs := map[string]InputRequest{}
				if caps != nil && caps.Elicitation != nil {
					reqs["user_name"] = elicitInput("What is your name?", nameSchema)
				}
				if caps != nil && caps.Sampling != nil {
					reqs["greeting"] = samplingInput("Generate a short greeting", 50)
				}
				if caps != nil && caps.Roots != nil {
					reqs["client_roots"] = rootsInput
				}
				if len(reqs) == 0 {
					return textResult("No declared client capability supports an in-band input request"), nil
				}
				return nil, &InputRequired{Requests: reqs}
			}),
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return s.AddPrompt(&Prompt{Name: "test_input_required_result_prompt", Description: "MRTR (SEP-2322): asks for context via an in-band elicitation request"},
		func(ctx context.Context, r *Request, _ map[string]string) (*GetPromptResult, error) {
			if c := accepted(r, "user_context"); c != nil {
				ctxText, _ := c["context"].(string)
				return &GetPromptResult{Description: "A prompt with elicited context",
					Messages: []*PromptMessage{{Role: "user", Content: Text("Context: " + ctxText)}}}, nil
			}
			return nil, &InputRequired{Requests: map[string]InputRequest{
				"user_context": elicitInput("Please provide context for the prompt", `{"type":"object","properties":{"context":{"type":"string"}},"required":["context"]}`)}}
		})
}

func conformanceResources(s *Server) error {
	text := func(body string) ResourceHandler {
		return func(ctx context.Context, r *Request, uri string, _ map[string]string) (*ReadResourceResult, error) {
			return &ReadResourceResult{Contents: []*ResourceContents{{URI: uri, MimeType: "text/plain", Text: body}}}, nil
		}
	}
	inline := ResourceOptions{Inline: true}
	if err := s.AddResource(&Resource{URI: "test://static-text", Name: "static-text", Description: "A static text resource for testing", MimeType: "text/plain"},
		inline, text("This is the content of the static text resource.")); err != nil {
		return err
	}
	if err := s.AddResource(&Resource{URI: "test://static-binary", Name: "static-binary", Description: "A static binary resource (image) for testing", MimeType: "image/png"},
		inline, func(ctx context.Context, r *Request, uri string, _ map[string]string) (*ReadResourceResult, error) {
			return &ReadResourceResult{Contents: []*ResourceContents{{URI: uri, MimeType: "image/png", Blob: conformancePNG}}}, nil
		}); err != nil {
		return err
	}
	if err := s.AddResource(&Resource{URI: "test://watched-resource", Name: "watched-resource", Description: "A resource clients may subscribe to", MimeType: "text/plain"},
		inline, text("Watched resource content")); err != nil {
		return err
	}
	return s.AddResourceTemplate(&ResourceTemplate{URITemplate: "test://template/{id}/data", Name: "template", Description: "A resource template with parameter substitution", MimeType: "application/json"},
		inline, func(ctx context.Context, r *Request, uri string, vars map[string]string) (*ReadResourceResult, error) {
			id := vars["id"]
			b, _ := codec.Marshal(map[string]any{"id": id, "templateTest": true, "data": "Data for ID: " + id})
			return &ReadResourceResult{Contents: []*ResourceContents{{URI: uri, MimeType: "application/json", Text: string(b)}}}, nil
		})
}

func conformancePrompts(s *Server) error {
	msgs := func(ms ...*PromptMessage) []*PromptMessage { return ms }
	prompts := []struct {
		p Prompt
		h PromptHandler
	}{
		{Prompt{Name: "test_simple_prompt", Title: "Simple Test Prompt", Description: "A simple prompt without arguments"},
			func(ctx context.Context, r *Request, _ map[string]string) (*GetPromptResult, error) {
				return &GetPromptResult{Description: "A simple test prompt", Messages: msgs(&PromptMessage{Role: "user", Content: Text("This is a simple prompt for testing.")})}, nil
			}},
		{Prompt{Name: "test_prompt_with_arguments", Title: "Prompt With Arguments", Description: "A prompt with required arguments",
			Arguments: []*PromptArgument{{Name: "arg1", Description: "First test argument", Required: true}, {Name: "arg2", Description: "Second test argument", Required: true}}},
			func(ctx context.Context, r *Request, a map[string]string) (*GetPromptResult, error) {
				return &GetPromptResult{Description: "A prompt with arguments", Messages: msgs(&PromptMessage{Role: "user",
					Content: Text(fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", a["arg1"], a["arg2"]))})}, nil
			}},
		{Prompt{Name: "test_prompt_with_embedded_resource", Title: "Prompt With Embedded Resource", Description: "A prompt that includes an embedded resource",
			Arguments: []*PromptArgument{{Name: "resourceUri", Description: "URI of the resource to embed", Required: true}}},
			func(ctx context.Context, r *Request, a map[string]string) (*GetPromptResult, error) {
				return &GetPromptResult{Description: "A prompt with an embedded resource", Messages: msgs(
					&PromptMessage{Role: "user", Content: Embedded(&ResourceContents{URI: a["resourceUri"], MimeType: "text/plain", Text: "Embedded resource content for testing."})},
					&PromptMessage{Role: "user", Content: Text("Please process the embedded resource above.")})}, nil
			}},
		{Prompt{Name: "test_prompt_with_image", Title: "Prompt With Image", Description: "A prompt that includes image content"},
			func(ctx context.Context, r *Request, _ map[string]string) (*GetPromptResult, error) {
				return &GetPromptResult{Description: "A prompt with an image", Messages: msgs(
					&PromptMessage{Role: "user", Content: Image(conformancePNG, "image/png")},
					&PromptMessage{Role: "user", Content: Text("Please analyze the image above.")})}, nil
			}},
	}
	for i := range prompts {
		if err := s.AddPrompt(&prompts[i].p, prompts[i].h); err != nil {
			return err
		}
	}
	return nil
}

// ---- tasks extension fixtures (io.modelcontextprotocol/tasks) ----

func conformanceTasks(s *Server) error {
	sleep := func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	if err := s.AddTool(&Tool{Name: "greet", Description: "Greets by name (synchronous only)",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)}, ToolOptions{Inline: true},
		func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
			var in struct {
				Name string `json:"name"`
			}
			_ = codec.Unmarshal(args, &in)
			return textResult("Hello, " + in.Name + "!"), nil
		}); err != nil {
		return err
	}
	compute := func(ctx context.Context, _ *Task, args json.RawMessage) (*CallToolResult, error) {
		var in struct {
			Seconds int    `json:"seconds"`
			Label   string `json:"label"`
		}
		_ = codec.Unmarshal(args, &in)
		if err := sleep(ctx, time.Duration(in.Seconds)*time.Second); err != nil {
			return nil, err
		}
		return textResult(fmt.Sprintf("Computed %q after %d second(s)", in.Label, in.Seconds)), nil
	}
	confirm := `{"type":"object","properties":{"confirm":{"type":"boolean"}},"required":["confirm"]}`
	nameInput := `{"type":"object","properties":{"value":{"type":"string"}},"required":["value"]}`
	tools := []TaskTool{
		{Tool: &Tool{Name: "slow_compute", Description: "Sleeps for the given seconds, then answers; runs as a task for clients with the tasks extension",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"seconds":{"type":"integer","minimum":0},"label":{"type":"string"}},"required":["seconds"]}`)},
			Run: compute},
		{Tool: &Tool{Name: "failing_job", Description: "A task (required) that completes with a tool error after about a second"}, Required: true,
			Run: func(ctx context.Context, _ *Task, _ json.RawMessage) (*CallToolResult, error) {
				if err := sleep(ctx, time.Second); err != nil {
					return nil, err
				}
				return &CallToolResult{IsError: true, Content: []Content{Text("failing_job failed as designed")}}, nil
			}},
		{Tool: &Tool{Name: "protocol_error_job", Description: "A task that fails with a protocol error"},
			Run: func(ctx context.Context, _ *Task, _ json.RawMessage) (*CallToolResult, error) {
				return nil, codec.NewError(codec.CodeInternalError, "protocol_error_job failed as designed")
			}},
		{Tool: &Tool{Name: "confirm_delete", Description: "A task that asks the client to confirm (input_required) before deleting a file",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"filename":{"type":"string"}}}`)},
			Run: func(ctx context.Context, t *Task, args json.RawMessage) (*CallToolResult, error) {
				var in struct {
					Filename string `json:"filename"`
				}
				_ = codec.Unmarshal(args, &in)
				got, err := t.Input(ctx, map[string]InputRequest{"confirm": elicitInput("Delete "+in.Filename+"?", confirm)})
				if err != nil {
					return nil, err
				}
				var er ElicitResult
				if codec.Unmarshal(got["confirm"], &er) == nil && er.Action == "accept" {
					return textResult("Deleted " + in.Filename), nil
				}
				return textResult("Deletion of " + in.Filename + " cancelled"), nil
			},
			Sync: func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
				return &CallToolResult{IsError: true, Content: []Content{Text("confirm_delete needs the tasks extension to ask for confirmation")}}, nil
			}},
		{Tool: &Tool{Name: "multi_input", Description: "A task that asks for two inputs at once"},
			Run: func(ctx context.Context, t *Task, _ json.RawMessage) (*CallToolResult, error) {
				got, err := t.Input(ctx, map[string]InputRequest{
					"first":  elicitInput("First value?", nameInput),
					"second": elicitInput("Second value?", nameInput),
				})
				if err != nil {
					return nil, err
				}
				return textResult(fmt.Sprintf("Received %d inputs", len(got))), nil
			},
			Sync: func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
				return &CallToolResult{IsError: true, Content: []Content{Text("multi_input needs the tasks extension")}}, nil
			}},
		{Tool: &Tool{Name: "test_tool_with_task", Description: "Gathers the user name with an input-required round, then runs as a task (required)"}, Required: true,
			Prepare: func(ctx context.Context, r *Request, args json.RawMessage) (json.RawMessage, error) {
				if name, _ := accepted(r, "user_name")["name"].(string); name != "" {
					return codec.Marshal(map[string]string{"name": name})
				}
				return nil, &InputRequired{Requests: map[string]InputRequest{"user_name": elicitInput("What is your name?", nameSchema)}}
			},
			Run: func(ctx context.Context, _ *Task, args json.RawMessage) (*CallToolResult, error) {
				var in struct {
					Name string `json:"name"`
				}
				_ = codec.Unmarshal(args, &in)
				return textResult("Hello, " + in.Name + "! (finished as a task)"), nil
			}},
	}
	for _, tt := range tools {
		if err := s.AddTaskTool(tt); err != nil {
			return err
		}
	}
	return nil
}
