package server

// decodeCallParams decodes tools/call params into p. p.Name may alias r.Params (the
// caller replaces it with the registered tool's name, or copies it). The common shape — an object of
// exactly "name" (a string without escapes) and "arguments" — is read by one strict walk
// over the bytes; anything else (_meta, other members, escapes, duplicates, a name that is
// not a plain string, bytes the fast walk would not vouch for) goes through sonic
// (decodeParams), which then gives the result or the error. TestCallParamsDifferential and
// FuzzCallParams hold the walk to sonic's results.
//
// A stateless HTTP request's name and arguments were read already with its _meta
// (serveStateless, fastStatelessParams); p.Meta then stays nil, as nothing reads it.
func decodeCallParams(r *Request, p *CallToolParams) error {
	if o, ok := r.out.(*postOutput); ok && o.hasCall {
		*p = o.call
		return nil
	}
	if fastCallParams(r.Params, p) {
		return nil
	}
	*p = CallToolParams{}
	return decodeParams(r, p)
}

// fastCallParams is decodeCallParams' walk; false leaves the decoding to sonic (p may be
// partly written).
func fastCallParams(b []byte, p *CallToolParams) bool {
	i := fastWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	var haveName, haveArgs bool
	i = fastWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false // no name: let the full path answer
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		kend, esc, ok := fastString(b, i)
		if !ok || esc {
			return false
		}
		key := b2str(b[i+1 : kend-1])
		i = fastWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = fastWS(b, i+1)
		start := i
		var s *fastSchema // nil: any value, strictly scanned
		end, ok := s.value(b, i, 1)
		if !ok {
			return false
		}
		switch key {
		case "name":
			if haveName || b[start] != '"' {
				return false
			}
			_, esc, _ := fastString(b, start)
			if esc {
				return false
			}
			p.Name = b2str(b[start+1 : end-1]) // aliases b: see decodeCallParams
			haveName = true
		case "arguments":
			if haveArgs || b[start] != '{' {
				return false
			}
			p.Arguments = append([]byte(nil), b[start:end]...)
			haveArgs = true
		default:
			return false
		}
		i = fastWS(b, end)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return false
		}
		i = fastWS(b, i+1)
	}
	return haveName && fastWS(b, i) == len(b)
}
