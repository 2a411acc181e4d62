package server

import (
	"context"
	"fmt"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/yosida95/uritemplate/v3"
)

// ResourceHandler reads a resource. uri is the URI asked for; for a template it matched the
// template and vars holds the template's variables.
type ResourceHandler func(ctx context.Context, r *Request, uri string, vars map[string]string) (*ReadResourceResult, error)

// ResourceOptions tune how a resource is served.
type ResourceOptions struct {
	// Inline runs the handler on the connection's goroutine (only for handlers that never block).
	Inline bool
}

type resourceEntry struct {
	res     *Resource
	handler ResourceHandler
	opts    ResourceOptions
}

type templateEntry struct {
	tmpl     *ResourceTemplate
	compiled *uritemplate.Template
	handler  ResourceHandler
	opts     ResourceOptions
}

// AddResource registers (or replaces) a resource with a fixed URI.
func (s *Server) AddResource(res *Resource, opts ResourceOptions, h ResourceHandler) error {
	if res == nil || res.URI == "" || res.Name == "" {
		return fmt.Errorf("server: AddResource: a resource needs a uri and a name")
	}
	if h == nil {
		return fmt.Errorf("server: AddResource %q: nil handler", res.URI)
	}
	rc := *res
	s.resources.put(rc.URI, &resourceEntry{res: &rc, handler: h, opts: opts})
	s.listChanged(NotificationResourceListChanged)
	return nil
}

// AddResourceTemplate registers (or replaces) a family of resources named by an RFC 6570
// URI template (levels 1–4). resources/read of a URI that no fixed resource has is matched
// against the templates.
func (s *Server) AddResourceTemplate(t *ResourceTemplate, opts ResourceOptions, h ResourceHandler) error {
	if t == nil || t.URITemplate == "" || t.Name == "" {
		return fmt.Errorf("server: AddResourceTemplate: a template needs a uriTemplate and a name")
	}
	if h == nil {
		return fmt.Errorf("server: AddResourceTemplate %q: nil handler", t.URITemplate)
	}
	compiled, err := uritemplate.New(t.URITemplate)
	if err != nil {
		return fmt.Errorf("server: AddResourceTemplate %q: %w", t.URITemplate, err)
	}
	tc := *t
	s.templates.put(tc.URITemplate, &templateEntry{tmpl: &tc, compiled: compiled, handler: h, opts: opts})
	s.listChanged(NotificationResourceListChanged)
	return nil
}

// RemoveResources unregisters resources by URI and reports how many existed.
func (s *Server) RemoveResources(uris ...string) int {
	n := s.resources.remove(uris...)
	if n > 0 {
		s.listChanged(NotificationResourceListChanged)
	}
	return n
}

// ResourceUpdated tells every session subscribed to uri that it changed
// (notifications/resources/updated). In cluster mode the sessions held by every node are
// told, each once.
func (s *Server) ResourceUpdated(uri string) {
	if cn := s.cluster; cn != nil {
		cn.resourceUpdated(uri)
		return
	}
	for _, ss := range s.subs.subscribers(uri) {
		_ = ss.Notify(NotificationResourceUpdated, &ResourceUpdatedParams{URI: uri})
	}
}

func (s *Server) listResources(ctx context.Context, r *Request) (any, error) {
	var p PaginatedParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	es, next, err := s.resources.page(p.Cursor, s.cfg.PageSize)
	if err != nil {
		return nil, err
	}
	res := &ListResourcesResult{Resources: make([]*Resource, len(es)), NextCursor: next}
	for i, e := range es {
		res.Resources[i] = e.val.res
	}
	return res, nil
}

func (s *Server) listResourceTemplates(ctx context.Context, r *Request) (any, error) {
	var p PaginatedParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	es, next, err := s.templates.page(p.Cursor, s.cfg.PageSize)
	if err != nil {
		return nil, err
	}
	res := &ListResourceTemplatesResult{ResourceTemplates: make([]*ResourceTemplate, len(es)), NextCursor: next}
	for i, e := range es {
		res.ResourceTemplates[i] = e.val.tmpl
	}
	return res, nil
}

// readState is what prepareReadResource stashes for readResource.
type readState struct {
	uri     string
	vars    map[string]string
	handler ResourceHandler
}

func (s *Server) prepareReadResource(r *Request) (bool, error) {
	var p ReadResourceParams
	if err := decodeParams(r, &p); err != nil {
		return false, err
	}
	if p.URI == "" {
		return false, codec.NewError(codec.CodeInvalidParams, "resources/read: missing params.uri")
	}
	if e, ok := s.resources.get(p.URI); ok {
		r.state = &readState{uri: p.URI, handler: e.handler}
		return !e.opts.Inline, nil
	}
	for _, te := range s.templates.snapshot() {
		m := te.val.compiled.Match(p.URI)
		if m == nil {
			continue
		}
		vars := make(map[string]string, len(te.val.compiled.Varnames()))
		for _, name := range te.val.compiled.Varnames() {
			if v := m.Get(name); v.Valid() {
				vars[name] = v.String()
			}
		}
		r.state = &readState{uri: p.URI, vars: vars, handler: te.val.handler}
		return !te.val.opts.Inline, nil
	}
	return false, s.resourceNotFound(r, p.URI)
}

// resourceNotFound is -32002 in the session era and -32602 from 2026-07-28 on.
func (s *Server) resourceNotFound(r *Request, uri string) error {
	code := codec.CodeResourceNotFound
	if r.version >= proto20260728 {
		code = codec.CodeInvalidParams
	}
	return codec.NewError(code, "resource not found: %q", snippet(uri)).WithData(map[string]any{"uri": uri})
}

func (s *Server) readResource(ctx context.Context, r *Request) (any, error) {
	st, _ := r.state.(*readState)
	if st == nil {
		if _, err := s.prepareReadResource(r); err != nil {
			return nil, err
		}
		st = r.state.(*readState)
	}
	res, err := st.handler(ctx, r, st.uri, st.vars)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, s.resourceNotFound(r, st.uri)
	}
	if res.Contents == nil {
		res.Contents = []*ResourceContents{}
	}
	return res, nil
}

func (s *Server) subscribe(ctx context.Context, r *Request) (any, error) {
	var p SubscribeParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	if p.URI == "" {
		return nil, codec.NewError(codec.CodeInvalidParams, "resources/subscribe: missing params.uri")
	}
	ss := r.Session
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil, codec.NewError(codec.CodeConnectionClosed, "session closed")
	}
	had := ss.setSubLocked(p.URI, true)
	ss.mu.Unlock()
	if !had {
		s.subs.add(p.URI, ss)
		if cn := s.cluster; cn != nil {
			cn.subscribed(ss, p.URI, true)
		}
	}
	return &EmptyResult{}, nil
}

func (s *Server) unsubscribe(ctx context.Context, r *Request) (any, error) {
	var p SubscribeParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	ss := r.Session
	ss.mu.Lock()
	had := ss.setSubLocked(p.URI, false)
	ss.mu.Unlock()
	if had {
		s.subs.remove(p.URI, ss)
		if cn := s.cluster; cn != nil {
			cn.subscribed(ss, p.URI, false)
		}
	}
	return &EmptyResult{}, nil
}

// listChanged tells every initialized session that a list changed.
func (s *Server) listChanged(method string) {
	if cn := s.cluster; cn != nil {
		cn.listChanged(method)
		return
	}
	if s.sessions.len() == 0 {
		return
	}
	s.sessions.each(func(ss *Session) {
		if ss.Initialized() && !ss.Closed() {
			_ = ss.Notify(method, struct{}{})
		}
	})
}
