package server

import "github.com/erlmcp/erlmcp-go/codec"

// appendCallResult appends res encoded exactly as codec.Marshal encodes it, for the
// common shape only: text content without annotations or _meta, no structuredContent, no
// _meta. ok is false for anything else (dst is then returned unchanged), which the
// general encoder serves. It saves sonic's reflection walk on the hottest reply;
// TestCallResultEncoding holds it byte for byte to codec.Marshal.
func appendCallResult(dst []byte, res *CallToolResult) (out []byte, ok bool) {
	if res.StructuredContent != nil || len(res.Meta) != 0 {
		return dst, false
	}
	for _, c := range res.Content {
		tc, isText := c.(*TextContent)
		if !isText || tc == nil || tc.Annotations != nil || len(tc.Meta) != 0 || hasBackspaceOrFormFeed(tc.Type) || hasBackspaceOrFormFeed(tc.Text) {
			return dst, false
		}
	}
	dst = append(dst, `{"content":`...)
	if res.Content == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, c := range res.Content {
			tc := c.(*TextContent)
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":`...)
			dst = codec.AppendString(dst, tc.Type)
			dst = append(dst, `,"text":`...)
			dst = codec.AppendString(dst, tc.Text)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if res.IsError {
		dst = append(dst, `,"isError":true`...)
	}
	return append(dst, '}'), true
}

// hasBackspaceOrFormFeed reports whether s holds \b or \f, which codec.AppendString writes
// in their short forms where sonic writes \u0008 and \u000c.
func hasBackspaceOrFormFeed(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\b' || s[i] == '\f' {
			return true
		}
	}
	return false
}
