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
	end, ok := fastMembers(b, i, func(key string, j int) (int, bool) {
		switch key {
		case "name":
			if haveName || b[j] != '"' {
				return j, false
			}
			end, esc, ok := fastString(b, j)
			if !ok || esc {
				return j, false
			}
			p.Name = b2str(b[j+1 : end-1]) // aliases b: see decodeCallParams
			haveName = true
			return end, true
		case "arguments":
			if haveArgs || b[j] != '{' {
				return j, false
			}
			end, ok := fastAny(b, j)
			if !ok {
				return j, false
			}
			p.Arguments = append([]byte(nil), b[j:end]...)
			haveArgs = true
			return end, true
		}
		return j, false
	})
	// No name (an empty object included): let the full path answer.
	return ok && haveName && fastWS(b, end) == len(b)
}
