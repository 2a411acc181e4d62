package server

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// Extension methods: the tasks extension's built in, others added per server.
const (
	MethodTasksGet    = "tasks/get"
	MethodTasksUpdate = "tasks/update"
	MethodTasksCancel = "tasks/cancel"
)

// MethodOptions says how a method added with HandleMethod is served.
type MethodOptions struct {
	// BeforeInit allows the method before initialize when the server enforces the
	// lifecycle (Config.StrictLifecycle), as ping and server/discover are.
	BeforeInit bool
	// Worker runs the handler on the worker pool, for handlers that may block (disk,
	// network, a lock held by a slow writer); the default runs it inline on the
	// connection's event goroutine, which is right for handlers that answer from memory.
	Worker bool
}

// extState is what extensions add to a server: their methods (copy-on-write, read with
// one atomic load per unknown method) and their capabilities.
type extState struct {
	mu    sync.Mutex                   // serializes writers of methods and decls
	decls map[string]extensionDecl     // capabilities.extensions entries, by name
	caps  atomic.Pointer[extensionSet] // what initialize and server/discover declare
}

type extensionDecl struct {
	settings   any
	sessionEra bool // declared in initialize too, not only in server/discover
}

// extensionSet is the declared extensions of each era, made when a declaration changes.
type extensionSet struct {
	session, stateless map[string]any
}

// HandleMethod serves method with h on this server: the methods of an MCP extension
// (e.g. the skills extension's skills/list). It goes through the same door as the built-in
// methods (admission, lifecycle, the Observer, middleware, tracing) and is served in both
// eras. A built-in method cannot be replaced, and a method can be added only once. Safe to
// call at any time, concurrently with serving.
func (s *Server) HandleMethod(method string, h Handler, opts MethodOptions) error {
	if h == nil || method == "" {
		return fmt.Errorf("server: HandleMethod: needs a method name and a handler")
	}
	if methods[method] != nil {
		return fmt.Errorf("server: HandleMethod: %q is a built-in method", method)
	}
	mi := &methodInfo{name: method, beforeInit: opts.BeforeInit,
		serve: func(_ *Server, ctx context.Context, r *Request) (any, error) { return h(ctx, r) }}
	if opts.Worker {
		mi.prepare = func(*Server, *Request) (bool, error) { return true, nil }
	}
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	next := map[string]*methodInfo{}
	if cur := s.extMethods.Load(); cur != nil {
		if (*cur)[method] != nil {
			return fmt.Errorf("server: HandleMethod: %q is already served", method)
		}
		maps.Copy(next, *cur)
	}
	next[method] = mi
	s.extMethods.Store(&next)
	return nil
}

// DeclareExtension declares the MCP extension name with its settings object in the
// capabilities of initialize (session era) and server/discover (stateless era):
// capabilities.extensions[name] = settings. Declaring a name again replaces its
// settings. Safe to call at any time; sessions already initialized keep what they were
// told.
func (s *Server) DeclareExtension(name string, settings any) {
	s.declareExtension(name, settings, true)
}

// declareExtension is DeclareExtension, in server/discover only unless sessionEra.
func (s *Server) declareExtension(name string, settings any, sessionEra bool) {
	if settings == nil {
		settings = map[string]any{}
	}
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	if s.ext.decls == nil {
		s.ext.decls = map[string]extensionDecl{}
	}
	s.ext.decls[name] = extensionDecl{settings: settings, sessionEra: sessionEra}
	set := &extensionSet{session: map[string]any{}, stateless: map[string]any{}}
	for n, d := range s.ext.decls {
		set.stateless[n] = d.settings
		if d.sessionEra {
			set.session[n] = d.settings
		}
	}
	s.ext.caps.Store(set)
}

// extensionsFor returns the extensions to declare in one era, nil when none (shared:
// never modify it).
func (s *Server) extensionsFor(sessionEra bool) map[string]any {
	set := s.ext.caps.Load()
	if set == nil {
		return nil
	}
	m := set.stateless
	if sessionEra {
		m = set.session
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
