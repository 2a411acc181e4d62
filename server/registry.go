package server

import (
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/erlmcp/erlmcp-go/codec"
)

// registry holds named entries sorted by key, copy-on-write: readers (every list and call)
// load one pointer and never lock; writers (registration, reload) take mu and publish a new
// slice. Lists page through it with opaque cursors that name the last key returned, so a
// cursor stays valid while entries are added or removed between pages.
type registry[T any] struct {
	mu      sync.Mutex // serialises writers
	entries atomic.Pointer[[]regEntry[T]]
}

type regEntry[T any] struct {
	key string
	val T
}

// snapshot returns the current entries, sorted by key. Callers must not modify it.
func (r *registry[T]) snapshot() []regEntry[T] {
	if p := r.entries.Load(); p != nil {
		return *p
	}
	return nil
}

// get returns the entry for key.
func (r *registry[T]) get(key string) (T, bool) {
	es := r.snapshot()
	i, ok := slices.BinarySearchFunc(es, key, func(e regEntry[T], k string) int { return strings.Compare(e.key, k) })
	if !ok {
		var zero T
		return zero, false
	}
	return es[i].val, true
}

// put adds or replaces the entry for key. It reports whether key was new.
func (r *registry[T]) put(key string, val T) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	i, found := slices.BinarySearchFunc(old, key, func(e regEntry[T], k string) int { return strings.Compare(e.key, k) })
	next := make([]regEntry[T], 0, len(old)+1)
	next = append(next, old[:i]...)
	next = append(next, regEntry[T]{key, val})
	if found {
		next = append(next, old[i+1:]...)
	} else {
		next = append(next, old[i:]...)
	}
	r.entries.Store(&next)
	return !found
}

// remove deletes the entries for keys and reports how many existed.
func (r *registry[T]) remove(keys ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	next := make([]regEntry[T], 0, len(old))
	n := 0
	for _, e := range old {
		if slices.Contains(keys, e.key) {
			n++
			continue
		}
		next = append(next, e)
	}
	if n > 0 {
		r.entries.Store(&next)
	}
	return n
}

// len returns the number of entries.
func (r *registry[T]) len() int { return len(r.snapshot()) }

// startAfter returns the index of the first entry of es (sorted by key) after the one a
// page cursor names; 0 for no cursor.
func startAfter[T any](es []regEntry[T], cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return 0, err
	}
	start, _ := slices.BinarySearchFunc(es, after, func(e regEntry[T], k string) int { return strings.Compare(e.key, k) })
	if start < len(es) && es[start].key == after {
		start++
	}
	return start, nil
}

// page returns up to size entries after cursor and the cursor of the next page ("" at the end).
func (r *registry[T]) page(cursor string, size int) ([]regEntry[T], string, error) {
	es := r.snapshot()
	start, err := startAfter(es, cursor)
	if err != nil {
		return nil, "", err
	}
	end := min(start+size, len(es))
	next := ""
	if end < len(es) {
		next = encodeCursor(es[end-1].key)
	}
	return es[start:end], next, nil
}

const cursorPrefix = "c1:"

func encodeCursor(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + lastKey))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return "", codec.NewError(codec.CodeInvalidParams, "invalid cursor %q: not a cursor this server issued", snippet(c))
	}
	return string(b[len(cursorPrefix):]), nil
}

// snippet shortens s for error messages.
func snippet(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
