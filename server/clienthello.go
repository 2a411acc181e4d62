package server

import "sync"

// Thousands of sessions usually come from a handful of client builds that all introduce
// themselves with the same initialize params. Each session used to keep its own decoded
// clientInfo and capabilities (~190 bytes of heap); now sessions whose initialize params
// are byte-identical share one read-only copy.

// clientHello is a client's initialize clientInfo and capabilities, shared by the
// sessions whose initialize said the same; never modified once made.
type clientHello struct {
	info Implementation
	caps ClientCapabilities
}

// Bounds of the shared copies: params longer than maxHelloBytes are not shared, and at
// most maxHellos are kept (a new one displaces an arbitrary old one; sessions keep theirs).
const (
	maxHellos     = 256
	maxHelloBytes = 4096
)

var hellos struct {
	mu     sync.Mutex
	byJSON map[string]*clientHello // initialize params as sent → what they decoded to
}

// internClient returns the clientInfo and capabilities that initialize params raw decoded
// to (info, caps): the copy already shared by an earlier initialize with the same bytes,
// or a new one, shared from now on.
func internClient(raw []byte, info Implementation, caps ClientCapabilities) (*Implementation, *ClientCapabilities) {
	if len(raw) > maxHelloBytes {
		return &info, &caps
	}
	hellos.mu.Lock()
	defer hellos.mu.Unlock()
	if h := hellos.byJSON[string(raw)]; h != nil {
		return &h.info, &h.caps
	}
	if hellos.byJSON == nil {
		hellos.byJSON = make(map[string]*clientHello)
	}
	if len(hellos.byJSON) >= maxHellos {
		for k := range hellos.byJSON {
			delete(hellos.byJSON, k)
			break
		}
	}
	h := &clientHello{info: info, caps: caps}
	hellos.byJSON[string(raw)] = h
	return &h.info, &h.caps
}
