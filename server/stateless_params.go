package server

import (
	"strings"

	"github.com/erlmcp/erlmcp-go/codec"
)

// statelessRead is what one stateless request's params walk produces, with the request's
// MRTR input, in one allocation.
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
	end, ok := fastMembers(b, i, func(key string, v []byte) bool {
		switch key {
		case "name":
			return once(seenName) && plainString(v, &p.Name)
		case "uri":
			return once(seenURI) && plainString(v, &p.URI)
		case "taskId":
			return once(seenTask) && plainString(v, &p.TaskID)
		case "arguments":
			if !once(seenArgs) {
				return false
			}
			p.Arguments = v
			return true
		case "_meta":
			return once(seenMeta) && len(v) > 0 && v[0] == '{' && fastStatelessMeta(v, rd)
		}
		// requestState, inputResponses, and keys sonic would match case-insensitively to a
		// member: the full path.
		return !foldsTo(key, "name", "uri", "taskId", "arguments", "_meta", "requestState", "inputResponses")
	})
	if !ok || fastWS(b, end) != len(b) {
		return false
	}
	if seen&seenMeta != 0 {
		p.Meta = &rd.pm
	}
	return true
}

// fastStatelessMeta reads params._meta (the object v) into rd.pm and rd.meta.
func fastStatelessMeta(v []byte, rd *statelessRead) bool {
	pm, rm := &rd.pm, &rd.meta
	var seen uint8
	once := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	_, ok := fastMembers(v, 0, func(key string, val []byte) bool {
		switch key {
		case metaProtocolVersion:
			if !once(1) || !plainString(val, &rm.ProtocolVersion) {
				return false
			}
			pm.ProtocolVersion = &rm.ProtocolVersion
			return true
		case metaClientCapabilities:
			if !once(2) || val[0] != '{' {
				return false
			}
			caps := &rd.caps
			if !emptyObject(val) && codec.Unmarshal(val, caps) != nil {
				return false
			}
			pm.ClientCapabilities, rm.ClientCapabilities = caps, caps
			return true
		case metaClientInfo:
			if !once(4) || val[0] != '{' {
				return false
			}
			info := &rd.info
			if !fastImplementation(val, info) {
				*info = Implementation{}
				if codec.Unmarshal(val, info) != nil {
					return false
				}
			}
			pm.ClientInfo, rm.ClientInfo = info, info
			return true
		case metaLogLevel:
			var s string
			if !once(8) || !plainString(val, &s) {
				return false
			}
			pm.LogLevel = LoggingLevel(s)
			return true
		case "progressToken":
			if !once(16) {
				return false
			}
			rm.ProgressToken = append([]byte(nil), val...)
			return true
		case "traceparent":
			return once(32) && plainString(val, &rm.Traceparent)
		case "tracestate":
			return once(64) && plainString(val, &rm.Tracestate)
		}
		return !foldsTo(key, metaProtocolVersion, metaClientCapabilities, metaClientInfo, metaLogLevel,
			"progressToken", "traceparent", "tracestate")
	})
	return ok
}

// fastImplementation reads clientInfo (the object v) when every member is a plain string
// member of Implementation, each once; false leaves it to sonic (info may be partly set).
func fastImplementation(v []byte, info *Implementation) bool {
	var seen uint8
	_, ok := fastMembers(v, 0, func(key string, val []byte) bool {
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
			return false // icons, unknown or case-folded members: sonic
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return plainString(val, dst)
	})
	return ok
}

// fastMembers walks the object at b[i] == '{', calling member with each key (unescaped
// only; an escaped key makes it fail) and the bytes of its value, strictly scanned. It
// returns the index after the object; false when the object is malformed or member
// refused a member.
func fastMembers(b []byte, i int, member func(key string, v []byte) bool) (int, bool) {
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
		var anyValue *fastSchema // nil: any value, strictly scanned
		end, ok := anyValue.value(b, i, 1)
		if !ok || !member(key, b[i:end]) {
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

// plainString sets *dst to a copy of the JSON string v when it has no escapes.
func plainString(v []byte, dst *string) bool {
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	if _, esc, ok := fastString(v, 0); !ok || esc {
		return false
	}
	switch s := b2str(v[1 : len(v)-1]); s {
	case Version20260728: // the common value, without a copy
		*dst = Version20260728
	default:
		*dst = strings.Clone(s)
	}
	return true
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
