package server

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/google/jsonschema-go/jsonschema"
)

// ToolHandler serves tools/call for one tool with the raw arguments object. Report the
// tool's own failures in the result (IsError), protocol problems as a *codec.Error.
type ToolHandler func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error)

// ToolOptions tune how a tool is served.
type ToolOptions struct {
	// Inline runs the handler on the connection's own goroutine instead of a worker. Only
	// for handlers that never block (no I/O, no client requests): it saves a hand-off.
	Inline bool
	// NoValidation skips checking arguments against the input schema.
	NoValidation bool
}

type toolEntry struct {
	tool    *Tool
	handler ToolHandler
	opts    ToolOptions
	input   *jsonschema.Resolved // nil: no validation
	output  *jsonschema.Resolved // nil: no outputSchema
	// inFast and outFast are input and output compiled for the fast path (fastschema.go);
	// nil when the schema uses keywords outside its subset.
	inFast, outFast *fastSchema
	// headers are the arguments mirrored into Mcp-Param-* headers (x-mcp-header).
	headers []paramHeader
}

// AddTool registers (or replaces) a tool served by h with raw arguments. The tool's
// InputSchema (default {"type":"object"}) is compiled once here; arguments are checked
// against it on every call. Live sessions get notifications/tools/list_changed.
func (s *Server) AddTool(t *Tool, opts ToolOptions, h ToolHandler) error {
	if t == nil || t.Name == "" {
		return fmt.Errorf("server: AddTool: tool has no name")
	}
	if h == nil {
		return fmt.Errorf("server: AddTool %q: nil handler", t.Name)
	}
	tc := *t
	if len(tc.InputSchema) == 0 {
		tc.InputSchema = json.RawMessage(`{"type":"object"}`)
	}
	e := &toolEntry{tool: &tc, handler: h, opts: opts, headers: paramHeadersOf(tc.InputSchema)}
	var err error
	if !opts.NoValidation {
		if e.input, err = compileSchema(tc.InputSchema); err != nil {
			return fmt.Errorf("server: AddTool %q: inputSchema: %w", t.Name, err)
		}
		e.inFast = compileFast(e.input)
	}
	if len(tc.OutputSchema) > 0 {
		if e.output, err = compileSchema(tc.OutputSchema); err != nil {
			return fmt.Errorf("server: AddTool %q: outputSchema: %w", t.Name, err)
		}
		e.outFast = compileFast(e.output)
	}
	s.tools.put(tc.Name, e)
	s.listChanged(NotificationToolListChanged)
	return nil
}

// AddTool registers a tool whose arguments decode into In and whose structured output is
// Out. The input schema (and the output schema, unless Out is `any`) is derived once from
// the Go types: json tags name properties, fields without omitempty are required, and a
// `jsonschema:"…"` tag gives a description. A nil *CallToolResult with a non-zero Out
// yields structuredContent plus its JSON as text.
func AddTool[In, Out any](s *Server, t *Tool, h func(ctx context.Context, r *Request, in In) (*CallToolResult, Out, error)) error {
	return AddToolWith(s, t, ToolOptions{}, h)
}

// AddToolWith is AddTool with options.
func AddToolWith[In, Out any](s *Server, t *Tool, opts ToolOptions, h func(ctx context.Context, r *Request, in In) (*CallToolResult, Out, error)) error {
	tc := *t
	if len(tc.InputSchema) == 0 {
		sch, err := jsonschema.For[In](nil)
		if err != nil {
			return fmt.Errorf("server: AddTool %q: deriving input schema: %w", t.Name, err)
		}
		if tc.InputSchema, err = json.Marshal(sch); err != nil {
			return err
		}
	}
	outType := reflect.TypeFor[Out]()
	if len(tc.OutputSchema) == 0 && outType.Kind() != reflect.Interface {
		sch, err := jsonschema.ForType(outType, nil)
		if err != nil {
			return fmt.Errorf("server: AddTool %q: deriving output schema: %w", t.Name, err)
		}
		if tc.OutputSchema, err = json.Marshal(sch); err != nil {
			return err
		}
	}
	dec := newArgDecoder(reflect.TypeFor[In]())
	raw := func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
		var in In
		if len(args) > 0 && (dec == nil || !dec.decode(args, unsafe.Pointer(&in))) {
			p := new(In) // sonic decodes into a fresh value (in may be partly written)
			if err := codec.Unmarshal(args, p); err != nil {
				return nil, codec.NewError(codec.CodeInvalidParams, "tool %q arguments: %v", tc.Name, err)
			}
			in = *p
		}
		res, out, err := h(ctx, r, in)
		if err != nil {
			return nil, err
		}
		if res == nil {
			res = &CallToolResult{}
		}
		if outType.Kind() != reflect.Interface || !isZero(out) {
			if res.StructuredContent == nil {
				res.StructuredContent = out
			}
			if len(res.Content) == 0 {
				b, err := codec.Marshal(out)
				if err != nil {
					return nil, err
				}
				res.Content = []Content{Text(string(b))}
			}
		}
		return res, nil
	}
	return s.AddTool(&tc, opts, raw)
}

func isZero[T any](v T) bool {
	rv := reflect.ValueOf(&v).Elem()
	return !rv.IsValid() || rv.IsZero()
}

// RemoveTools unregisters tools by name and reports how many existed.
func (s *Server) RemoveTools(names ...string) int {
	n := s.tools.remove(names...)
	if n > 0 {
		s.listChanged(NotificationToolListChanged)
	}
	return n
}

// Tools returns the registered tools, sorted by name.
func (s *Server) Tools() []*Tool {
	es := s.tools.snapshot()
	out := make([]*Tool, len(es))
	for i, e := range es {
		out[i] = e.val.tool
	}
	return out
}

func (s *Server) listTools(ctx context.Context, r *Request) (any, error) {
	var p PaginatedParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	var es []regEntry[*toolEntry]
	var next string
	var err error
	if access := s.cfg.ToolAccess; access != nil {
		es, next, err = pageVisible(&s.tools, p.Cursor, s.cfg.PageSize, func(e *toolEntry) bool { return access(r, e.tool.Name) == nil })
	} else {
		es, next, err = s.tools.page(p.Cursor, s.cfg.PageSize)
	}
	if err != nil {
		return nil, err
	}
	res := &ListToolsResult{Tools: make([]*Tool, len(es)), NextCursor: next}
	for i, e := range es {
		res.Tools[i] = e.val.tool
	}
	return res, nil
}

// callState is what prepareCallTool stashes for callTool.
type callState struct {
	entry  *toolEntry
	params CallToolParams
}

// prepareCallTool decodes the call, finds the tool and validates its arguments before
// anything is queued, so bad calls are refused at once, inline.
func (s *Server) prepareCallTool(r *Request) (bool, error) {
	r.call = callState{}
	cs := &r.call
	if err := decodeCallParams(r, &cs.params); err != nil {
		return false, err
	}
	if cs.params.Name == "" {
		return false, codec.NewError(codec.CodeInvalidParams, "tools/call: missing tool name (params.name)")
	}
	e, ok := s.tools.get(cs.params.Name)
	if !ok {
		return false, codec.NewError(codec.CodeInvalidParams, "unknown tool %q", snippet(cs.params.Name))
	}
	cs.entry = e
	cs.params.Name = e.tool.Name // owned; the decoded name may alias r.Params
	if s.cfg.ToolAccess != nil {
		if err := s.cfg.ToolAccess(r, e.tool.Name); err != nil {
			return false, err
		}
	}
	if e.input != nil && !s.cfg.NoSchemaValidation {
		if err := validateArgs(e.input, e.inFast, cs.params.Arguments); err != nil {
			return false, codec.NewError(codec.CodeInvalidParams, "tool %q: invalid arguments: %v", e.tool.Name, err)
		}
	}
	r.state = cs
	return !e.opts.Inline, nil
}

func (s *Server) callTool(ctx context.Context, r *Request) (any, error) {
	cs, _ := r.state.(*callState)
	if cs == nil {
		// Reached through a path that skipped prepare (middleware calling route directly).
		if _, err := s.prepareCallTool(r); err != nil {
			return nil, err
		}
		cs = r.state.(*callState)
	}
	res, err := cs.entry.handler(ctx, r, cs.params.Arguments)
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = &CallToolResult{}
	}
	if res.Content == nil {
		res.Content = []Content{}
	}
	if cs.entry.output != nil && !res.IsError && res.StructuredContent != nil && !s.cfg.NoSchemaValidation {
		if err := validateValue(cs.entry.output, cs.entry.outFast, res.StructuredContent); err != nil {
			s.log.Warn("tool output does not match its outputSchema", "tool", cs.entry.tool.Name, "err", err)
			return nil, codec.NewError(codec.CodeInternalError, "tool %q produced output that does not match its outputSchema: %v", cs.entry.tool.Name, err)
		}
	}
	return res, nil
}
