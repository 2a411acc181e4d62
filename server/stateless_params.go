package server

import (
	"strings"

	"github.com/erlmcp/erlmcp-go/codec"
)

// statelessRead is what one stateless request's params walk produces, with the request's
// MRTR input; it lives in the request's statelessReq.
type statelessRead struct {
	meta requestMeta // the request _meta as dispatch reads it (Request.meta)
	pm   statelessMeta
	caps ClientCapabilities
	info Implementation
	mrtr mrtrInput
}

// fastStatelessParams reads the params of a 2026-07-28 request in one strict walk over the
// bytes, for the common shape: plain (unescaped) keys, each known member once, string
// members as plain strings, a _meta object, no requestState or inputResponses (MRTR
// retries). It fills p (p.Meta points into rd) and rd.meta, the request's _meta as
// versionFor would decode it, and reports true; for anything else it reports false and
// the caller decodes with sonic as before, which then gives the result or the error.
// Nothing it fills aliases b except p.Arguments (read while the request is served).
// TestStatelessParamsDifferential holds it to sonic's results.
func fastStatelessParams(b []byte, p *statelessParams, rd *statelessRead) bool {
	i := fastWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	var seen uint8
	const (
		seenName = 1 << iota
		seenURI
		seenTask
		seenArgs
		seenMeta
	)
	once := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	end, ok := fastMembers(b, i, func(key string, j int) (int, bool) {
		switch key {
		case "name":
			if !once(seenName) {
				return j, false
			}
			return fastPlain(b, j, &p.Name)
		case "uri":
			if !once(seenURI) {
				return j, false
			}
			return fastPlain(b, j, &p.URI)
		case "taskId":
			if !once(seenTask) {
				return j, false
			}
			return fastPlain(b, j, &p.TaskID)
		case "arguments":
			if !once(seenArgs) {
				return j, false
			}
			end, ok := fastAny(b, j)
			p.Arguments = b[j:end]
			return end, ok
		case "_meta":
			if !once(seenMeta) || j >= len(b) || b[j] != '{' {
				return j, false
			}
			return fastStatelessMeta(b, j, rd)
		}
		// requestState, inputResponses, and keys sonic would match case-insensitively to a
		// member: the full path.
		if foldsTo(key, "name", "uri", "taskId", "arguments", "_meta", "requestState", "inputResponses") {
			return j, false
		}
		return fastAny(b, j)
	})
	if !ok || fastWS(b, end) != len(b) {
		return false
	}
	if seen&seenMeta != 0 {
		p.Meta = &rd.pm
	}
	return true
}

// fastStatelessMeta reads params._meta (the object at b[i]) into rd.pm and rd.meta and
// returns the index after it.
func fastStatelessMeta(b []byte, i int, rd *statelessRead) (int, bool) {
	pm, rm := &rd.pm, &rd.meta
	var seen uint8
	once := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	return fastMembers(b, i, func(key string, j int) (int, bool) {
		switch key {
		case metaProtocolVersion:
			if !once(1) {
				return j, false
			}
			pm.ProtocolVersion = &rm.ProtocolVersion
			return fastPlain(b, j, &rm.ProtocolVersion)
		case metaClientCapabilities:
			if !once(2) || b[j] != '{' {
				return j, false
			}
			end, ok := fastAny(b, j)
			if !ok {
				return end, false
			}
			caps := &rd.caps
			if v := b[j:end]; !emptyObject(v) && codec.Unmarshal(v, caps) != nil {
				return end, false
			}
			pm.ClientCapabilities, rm.ClientCapabilities = caps, caps
			return end, true
		case metaClientInfo:
			if !once(4) || b[j] != '{' {
				return j, false
			}
			info := &rd.info
			end, ok := fastImplementation(b, j, info)
			if !ok {
				*info = Implementation{}
				if end, ok = fastAny(b, j); !ok || codec.Unmarshal(b[j:end], info) != nil {
					return end, false
				}
			}
			pm.ClientInfo, rm.ClientInfo = info, info
			return end, true
		case metaLogLevel:
			if !once(8) {
				return j, false
			}
			var s string
			end, ok := fastPlain(b, j, &s)
			pm.LogLevel = LoggingLevel(s)
			return end, ok
		case "progressToken":
			if !once(16) {
				return j, false
			}
			end, ok := fastAny(b, j)
			rm.ProgressToken = append([]byte(nil), b[j:end]...)
			return end, ok
		case "traceparent":
			if !once(32) {
				return j, false
			}
			return fastPlain(b, j, &rm.Traceparent)
		case "tracestate":
			if !once(64) {
				return j, false
			}
			return fastPlain(b, j, &rm.Tracestate)
		}
		if foldsTo(key, metaProtocolVersion, metaClientCapabilities, metaClientInfo, metaLogLevel,
			"progressToken", "traceparent", "tracestate") {
			return j, false
		}
		return fastAny(b, j)
	})
}

// fastImplementation reads clientInfo (the object at b[i]) when every member is a plain
// string member of Implementation, each once, and returns the index after it; false
// leaves it to sonic (info may be partly set).
func fastImplementation(b []byte, i int, info *Implementation) (int, bool) {
	var seen uint8
	return fastMembers(b, i, func(key string, j int) (int, bool) {
		var dst *string
		var bit uint8
		switch key {
		case "name":
			dst, bit = &info.Name, 1
		case "title":
			dst, bit = &info.Title, 2
		case "version":
			dst, bit = &info.Version, 4
		case "description":
			dst, bit = &info.Description, 8
		case "websiteUrl":
			dst, bit = &info.WebsiteURL, 16
		default:
			return j, false // icons, unknown or case-folded members: sonic
		}
		if seen&bit != 0 {
			return j, false
		}
		seen |= bit
		return fastPlain(b, j, dst)
	})
}

// fastMembers is the one object walk of the fast params paths (the stateless params and
// their _meta here, tools/call params in callparams.go, typed arguments in argdecode.go).
// It walks the object at b[i] == '{' in one pass, calling member with each key
// (unescaped only; an escaped key makes it fail) and the index j of its value. member
// reads the value strictly (fastAny, fastPlain or a nested walk) and returns the index
// after it, or false to refuse the member. fastMembers returns the index after the
// object; false when the object is malformed or member refused a member.
func fastMembers(b []byte, i int, member func(key string, j int) (int, bool)) (int, bool) {
	i = fastWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		kend, esc, ok := fastString(b, i)
		if !ok || esc {
			return i, false
		}
		key := b2str(b[i+1 : kend-1])
		i = fastWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = fastWS(b, i+1)
		if i >= len(b) {
			return i, false
		}
		end, ok := member(key, i)
		if !ok {
			return i, false
		}
		i = fastWS(b, end)
		if i >= len(b) {
			return i, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return i, false
		}
		i = fastWS(b, i+1)
	}
}

// fastAny strictly scans the JSON value at b[i] and returns the index after it.
func fastAny(b []byte, i int) (int, bool) {
	var anyValue *fastSchema // nil: any value, strictly scanned
	return anyValue.value(b, i, 1)
}

// fastPlain sets *dst to a copy of the JSON string at b[i] when it has no escapes, and
// returns the index after it.
func fastPlain(b []byte, i int, dst *string) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	end, esc, ok := fastString(b, i)
	if !ok || esc {
		return end, false
	}
	switch s := b2str(b[i+1 : end-1]); s {
	case Version20260728: // the common value, without a copy
		*dst = Version20260728
	default:
		*dst = strings.Clone(s)
	}
	return end, true
}

// emptyObject reports whether v is {} (maybe with whitespace inside).
func emptyObject(v []byte) bool {
	return len(v) >= 2 && v[0] == '{' && fastWS(v, 1) == len(v)-1
}

// foldsTo reports whether key equals one of names when case is ignored (sonic, like
// encoding/json, matches struct fields that way).
func foldsTo(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}
