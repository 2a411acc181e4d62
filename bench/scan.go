package bench

import "errors"

// errNotJSON reports a reply that is not a JSON object.
var errNotJSON = errors.New("bench: reply is not a JSON object")

// reply is what the load generator needs from one JSON-RPC message: it scans
// the top-level keys only and skips values without decoding them, because a
// full decode would cost the client more CPU than the server spends on a ping.
type reply struct {
	hasID     bool
	id        int64 // numeric ids only: the generator sends numbers
	isRequest bool  // has "method": a notification or a server→client request
	isError   bool
	code      int64 // error.code when isError
}

// scanReply fills r from the JSON object in b.
func scanReply(b []byte, r *reply) error {
	*r = reply{}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotJSON
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return errNotJSON
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return errNotJSON
		}
		ks := i + 1
		i = skipString(b, i)
		if i < 0 {
			return errNotJSON
		}
		key := b[ks : i-1]
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return errNotJSON
		}
		i = skipWS(b, i+1)
		switch string(key) {
		case "id":
			if i < len(b) && (b[i] == '-' || (b[i] >= '0' && b[i] <= '9')) {
				r.id, i = parseInt(b, i)
				r.hasID = true
				continue
			}
			if i < len(b) && b[i] == '"' {
				r.hasID = true // a string id: not ours; id stays 0
			}
		case "method":
			r.isRequest = true
		case "error":
			r.isError = true
			if i < len(b) && b[i] == '{' {
				end := skipValue(b, i)
				if end < 0 {
					return errNotJSON
				}
				r.code = findCode(b[i:end])
				i = end
				continue
			}
		}
		i = skipValue(b, i)
		if i < 0 {
			return errNotJSON
		}
	}
}

// findCode returns the "code" member of the error object obj, or 0.
func findCode(obj []byte) int64 {
	i := 1
	for i < len(obj) {
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return 0
		}
		if obj[i] == ',' {
			i++
			continue
		}
		ks := i + 1
		i = skipString(obj, i)
		if i < 0 {
			return 0
		}
		key := obj[ks : i-1]
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return 0
		}
		i = skipWS(obj, i+1)
		if string(key) == "code" {
			v, _ := parseInt(obj, i)
			return v
		}
		i = skipValue(obj, i)
		if i < 0 {
			return 0
		}
	}
	return 0
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"', or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

func parseInt(b []byte, i int) (int64, int) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var v int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + int64(b[i]-'0')
		i++
	}
	// Skip a fraction or exponent: ids are integers, but be lenient.
	for i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E' || b[i] == '+' || b[i] == '-' || (b[i] >= '0' && b[i] <= '9')) {
		i++
	}
	if neg {
		v = -v
	}
	return v, i
}
