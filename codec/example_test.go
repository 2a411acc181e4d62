package codec_test

import (
	"errors"
	"fmt"

	"github.com/erlmcp/erlmcp-go/codec"
)

// A server reads a frame, answers each request, and answers a frame it
// cannot decode with the error and the best-known id.
func Example() {
	var dec codec.Decoder // zero value: MaxDepth 128
	msgs := make([]codec.Message, 0, 8)
	out := make([]byte, 0, 512) // pooled in a real server

	handle := func(frame string) {
		out = out[:0]
		var err error
		msgs, _, err = dec.Decode([]byte(frame), msgs)
		if err != nil {
			var e *codec.Error
			errors.As(err, &e)
			out = codec.AppendError(out, e.ID, e)
			fmt.Printf("%s\n", out)
			return
		}
		for _, m := range msgs {
			switch m.Kind {
			case codec.KindRequest:
				var p struct {
					Name string `json:"name"`
				}
				if err := codec.Unmarshal(m.Params, &p); err != nil {
					out = codec.AppendError(out, m.ID, codec.NewError(codec.CodeInvalidParams, "bad params: %v", err))
					continue
				}
				out, _ = codec.AppendResult(out, m.ID, map[string]any{
					"content": []map[string]string{{"type": "text", "text": "hello " + p.Name}},
				})
			case codec.KindInvalid:
				out = codec.AppendError(out, m.ID, m.Err)
			}
		}
		fmt.Printf("%s\n", out)
	}

	handle(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"world"}}`)
	handle(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":`)
	handle(`{"jsonrpc":"2.0","id":3.5,"method":"ping"}`)
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":{"content":[{"text":"hello world","type":"text"}]}}
	// {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"invalid JSON: unexpected end at offset 55: end of input"}}
	// {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"id must be a string or an integer, got 3.5"}}
}

// Errors compare by code, so callers can test for a kind of refusal.
func ExampleError_Is() {
	err := error(codec.NewError(codec.CodeRateLimited, "rate limit %d/s exceeded", 100).
		WithData(map[string]any{"limit": 100, "retryAfterMs": 250}))
	fmt.Println(errors.Is(err, &codec.Error{Code: codec.CodeRateLimited}))
	fmt.Println(codec.CodeRateLimited.Name(), codec.CodeRateLimited.HTTPStatus())
	fmt.Printf("%s\n", codec.AppendError(nil, codec.IntID(9), err.(*codec.Error)))
	// Output:
	// true
	// rate_limited 429
	// {"jsonrpc":"2.0","id":9,"error":{"code":-32003,"message":"rate limit 100/s exceeded","data":{"limit":100,"retryAfterMs":250}}}
}
