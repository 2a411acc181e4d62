package server

import (
	"slices"
	"strings"

	"github.com/erlmcp/erlmcp-go/codec"
)

// ToolAccess returns nil when the caller of r may call (and see in tools/list) tool name:
// always when auth is not required, else when the caller's principal holds the scopes the
// tool needs. Otherwise it returns -32007 with data.requiredScopes and
// error "insufficient_scope". Install sets it as Config.ToolAccess, so a caller never sees
// a tool it cannot call and learns nothing from a call's arguments being validated.
func (l *Limits) ToolAccess(r *Request, name string) error {
	if l == nil || !l.authRequired {
		return nil
	}
	if err := l.scopes.Check(r.Principal(), name); err != nil {
		return codec.NewError(codec.CodeForbidden, "%s", strings.TrimPrefix(err.Error(), "limits: ")).
			WithData(map[string]any{"requiredScopes": l.scopes.Need(name), "error": "insufficient_scope"})
	}
	return nil
}

// toolAccess returns l.ToolAccess when tools must be filtered (auth required), else nil
// (no filtering, no cost).
func (l *Limits) toolAccess() func(*Request, string) error {
	if l == nil || !l.authRequired {
		return nil
	}
	return l.ToolAccess
}

// filterToolList removes the tools r's caller cannot call from a tools/list result, for
// the Middleware() path where Config.ToolAccess is not set (pages may then be short).
func (l *Limits) filterToolList(r *Request, res any) any {
	tr, ok := res.(*ListToolsResult)
	if !ok || !l.authRequired {
		return res
	}
	out := *tr
	out.Tools = slices.DeleteFunc(slices.Clone(tr.Tools), func(t *Tool) bool { return l.ToolAccess(r, t.Name) != nil })
	return &out
}

// pageVisible is registry.page restricted to the entries keep admits: a page holds up to
// size of them and the cursor is the key of the last one returned, so pages neither repeat
// nor skip, and the last page has no cursor even when invisible entries follow it.
func pageVisible[T any](r *registry[T], cursor string, size int, keep func(T) bool) ([]regEntry[T], string, error) {
	es := r.snapshot()
	start, err := startAfter(es, cursor)
	if err != nil {
		return nil, "", err
	}
	var out []regEntry[T]
	i := start
	for ; i < len(es) && len(out) < size; i++ {
		if keep(es[i].val) {
			out = append(out, es[i])
		}
	}
	next := ""
	if len(out) == size {
		for _, e := range es[i:] {
			if keep(e.val) {
				next = encodeCursor(out[len(out)-1].key)
				break
			}
		}
	}
	return out, next, nil
}
