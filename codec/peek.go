package codec

// PeekID returns the id of the JSON-RPC message whose first bytes are head, when head
// reaches a complete and valid top-level "id" member (a string or an integer), and NullID
// otherwise. It is for messages that are refused before they are read to their end (a
// line over the size limit): the refusal can then carry the request's id, so the client's
// pending call fails at once instead of waiting for its timeout. The scan is bounded by
// len(head), never recurses and never fails: members before the id are skipped (nested
// values by depth, strings validated), and anything it cannot read ends it with NullID.
// The returned id aliases head: Clone it to keep it.
func PeekID(head []byte) ID {
	i := skipWS(head, 0)
	if i >= len(head) || head[i] != '{' {
		return NullID
	}
	i++
	for {
		i = skipWS(head, i)
		if i >= len(head) || head[i] != '"' {
			return NullID
		}
		end, err := scanString(head, i)
		if err != nil {
			return NullID
		}
		key := head[i:end]
		i = skipWS(head, end)
		if i >= len(head) || head[i] != ':' {
			return NullID
		}
		i = skipWS(head, i+1)
		if i >= len(head) {
			return NullID
		}
		if keyName(key) == "id" {
			return peekIDValue(head, i)
		}
		var ok bool
		if i, ok = skipPartial(head, i); !ok {
			return NullID
		}
		i = skipWS(head, i)
		if i >= len(head) || head[i] != ',' {
			return NullID
		}
		i++
	}
}

// peekIDValue reads the id value at head[i]: a complete string, or an integer followed by
// a delimiter (so that a number cut by the end of head is not taken for a shorter one).
func peekIDValue(head []byte, i int) ID {
	switch c := head[i]; {
	case c == '"':
		end, err := scanString(head, i)
		if err != nil {
			return NullID
		}
		return ID{kind: IDString, raw: head[i:end]}
	case c == '-' || isDigit(c):
		end, ok := NumberEnd(head, i)
		if !ok || end >= len(head) || !isInteger(head[i:end]) {
			return NullID
		}
		if d := head[end]; d != ',' && d != '}' && !isWS(d) {
			return NullID
		}
		return ID{kind: IDNumber, raw: head[i:end]}
	}
	return NullID
}

// skipPartial returns the index after the value at head[i] and whether the value was
// complete and well formed within head. Containers are skipped by depth; strings inside
// them are validated so that a quote or bracket in a string is never miscounted.
func skipPartial(head []byte, i int) (int, bool) {
	switch c := head[i]; {
	case c == '"':
		end, err := scanString(head, i)
		return end, err == nil
	case c == '-' || isDigit(c):
		end, ok := NumberEnd(head, i)
		return end, ok && end < len(head)
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(head)-i >= len(lit) && string(head[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return i, false
	case c == '{' || c == '[':
		depth := 0
		for i < len(head) {
			switch head[i] {
			case '"':
				end, err := scanString(head, i)
				if err != nil {
					return i, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
	}
	return i, false
}
