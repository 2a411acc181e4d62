package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/erlmcp/erlmcp-go/codec"
)

// PromptHandler renders a prompt with its arguments (required ones are checked before).
type PromptHandler func(ctx context.Context, r *Request, args map[string]string) (*GetPromptResult, error)

type promptEntry struct {
	prompt  *Prompt
	handler PromptHandler
}

// AddPrompt registers (or replaces) a prompt.
func (s *Server) AddPrompt(p *Prompt, h PromptHandler) error {
	if p == nil || p.Name == "" {
		return fmt.Errorf("server: AddPrompt: prompt has no name")
	}
	if h == nil {
		return fmt.Errorf("server: AddPrompt %q: nil handler", p.Name)
	}
	pc := *p
	s.prompts.put(pc.Name, &promptEntry{prompt: &pc, handler: h})
	s.listChanged(NotificationPromptListChanged)
	return nil
}

// RemovePrompts unregisters prompts by name and reports how many existed.
func (s *Server) RemovePrompts(names ...string) int {
	n := s.prompts.remove(names...)
	if n > 0 {
		s.listChanged(NotificationPromptListChanged)
	}
	return n
}

func (s *Server) listPrompts(ctx context.Context, r *Request) (any, error) {
	var p PaginatedParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	es, next, err := s.prompts.page(p.Cursor, s.cfg.PageSize)
	if err != nil {
		return nil, err
	}
	res := &ListPromptsResult{Prompts: make([]*Prompt, len(es)), NextCursor: next}
	for i, e := range es {
		res.Prompts[i] = e.val.prompt
	}
	return res, nil
}

type promptState struct {
	entry  *promptEntry
	params GetPromptParams
}

func (s *Server) prepareGetPrompt(r *Request) (bool, error) {
	st := &promptState{}
	if err := decodeParams(r, &st.params); err != nil {
		return false, err
	}
	e, ok := s.prompts.get(st.params.Name)
	if !ok {
		return false, codec.NewError(codec.CodeInvalidParams, "unknown prompt %q", snippet(st.params.Name))
	}
	var missing []string
	for _, a := range e.prompt.Arguments {
		if _, ok := st.params.Arguments[a.Name]; a.Required && !ok {
			missing = append(missing, a.Name)
		}
	}
	if len(missing) > 0 {
		return false, codec.NewError(codec.CodeInvalidParams, "prompt %q: missing required arguments: %s", e.prompt.Name, strings.Join(missing, ", "))
	}
	st.entry = e
	r.state = st
	return true, nil
}

func (s *Server) getPrompt(ctx context.Context, r *Request) (any, error) {
	st, _ := r.state.(*promptState)
	if st == nil {
		if _, err := s.prepareGetPrompt(r); err != nil {
			return nil, err
		}
		st = r.state.(*promptState)
	}
	res, err := st.entry.handler(ctx, r, st.params.Arguments)
	if err != nil {
		return nil, err
	}
	if res.Messages == nil {
		res.Messages = []*PromptMessage{}
	}
	return res, nil
}

// CompletionHandler suggests values for an argument of a prompt or resource template.
type CompletionHandler func(ctx context.Context, r *Request, p *CompleteParams) (*CompleteResult, error)

// SetCompletionHandler installs the handler of completion/complete. Without one the server
// answers every completion with an empty list.
func (s *Server) SetCompletionHandler(h CompletionHandler) { s.completions.Store(&h) }

func (s *Server) prepareComplete(r *Request) (bool, error) {
	p := &CompleteParams{}
	if err := decodeParams(r, p); err != nil {
		return false, err
	}
	switch p.Ref.Type {
	case "ref/prompt":
		if _, ok := s.prompts.get(p.Ref.Name); !ok {
			return false, codec.NewError(codec.CodeInvalidParams, "completion: unknown prompt %q", snippet(p.Ref.Name))
		}
	case "ref/resource":
		if _, ok := s.templates.get(p.Ref.URI); !ok {
			if _, ok := s.resources.get(p.Ref.URI); !ok {
				return false, codec.NewError(codec.CodeInvalidParams, "completion: unknown resource template %q", snippet(p.Ref.URI))
			}
		}
	default:
		return false, codec.NewError(codec.CodeInvalidParams, "completion: ref.type must be ref/prompt or ref/resource, got %q", snippet(p.Ref.Type))
	}
	r.state = p
	return s.completions.Load() != nil, nil
}

func (s *Server) complete(ctx context.Context, r *Request) (any, error) {
	p, _ := r.state.(*CompleteParams)
	if p == nil {
		if _, err := s.prepareComplete(r); err != nil {
			return nil, err
		}
		p = r.state.(*CompleteParams)
	}
	h := s.completions.Load()
	if h == nil {
		return &CompleteResult{Completion: Completion{Values: []string{}}}, nil
	}
	res, err := (*h)(ctx, r, p)
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = &CompleteResult{}
	}
	if res.Completion.Values == nil {
		res.Completion.Values = []string{}
	}
	if len(res.Completion.Values) > 100 {
		// The spec caps one answer at 100 values.
		res.Completion.Total = max(res.Completion.Total, len(res.Completion.Values))
		res.Completion.Values = res.Completion.Values[:100]
		res.Completion.HasMore = true
	}
	return res, nil
}
