// Package codec turns bytes into JSON-RPC 2.0 messages and back. It is the
// only package of erlmcp-go that imports bytedance/sonic; the rest of the
// project calls Marshal, Unmarshal and the Append* encoders here.
//
// codec knows nothing about MCP methods, but it owns the table of error
// codes (see [Code]).
//
// Decoding is zero-copy: a [Message] from [Decoder.Decode] aliases the frame
// it came from (ids, method, raw params) and is valid until that frame's
// buffer is modified or released. One iterative pass validates the frame
// (JSON syntax, UTF-8, nesting depth), then the envelope is read in place;
// params and results stay raw for the caller to Unmarshal into its types.
//
// Encoding appends to caller-owned buffers, so callers can pool them:
//
//	var dec codec.Decoder // zero value: MaxDepth 128
//	msgs, _, err := dec.Decode(frame, msgs)
//	if err != nil {
//		var e *codec.Error
//		errors.As(err, &e)
//		out = codec.AppendError(out, e.ID, e)
//		return
//	}
//	for _, m := range msgs {
//		out, _ = codec.AppendResult(out, m.ID, map[string]any{})
//	}
package codec
