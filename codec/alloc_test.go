//go:build !race

package codec

import "testing"

// The hot path decode → encode must not allocate beyond the caller's
// reusable buffers (house rule 13).
func TestAllocs(t *testing.T) {
	frame := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris","units":"metric"},"_meta":{"progressToken":"p-42"}}}` + "\r\n")
	var d Decoder
	msgs := make([]Message, 0, 4)
	buf := make([]byte, 0, 4096)
	e := NewError(CodeRateLimited, "rate limit %d/s exceeded", 100)
	f := func(name string, max float64, fn func()) {
		t.Helper()
		if n := testing.AllocsPerRun(200, fn); n > max {
			t.Errorf("%s: %v allocs per run, budget %v", name, n, max)
		}
	}
	f("Decode tools/call", 0, func() {
		var err error
		msgs, _, err = d.Decode(frame, msgs)
		if err != nil || len(msgs) != 1 {
			t.Fatal(err)
		}
	})
	batch := []byte(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`)
	f("Decode batch of 2", 0, func() {
		msgs, _, _ = d.Decode(batch, msgs)
	})
	f("AppendResultRaw", 0, func() {
		buf = AppendResultRaw(buf[:0], msgs[0].ID, []byte(`{"content":[{"type":"text","text":"18C"}]}`))
	})
	f("AppendError", 0, func() {
		buf = AppendError(buf[:0], msgs[0].ID, e)
	})
	// Boxed once: converting a struct to any allocates in the caller, not here.
	var result any = &struct {
		OK   bool   `json:"ok"`
		Text string `json:"text"`
	}{true, "18C"}
	// sonic's EncodeInto boxes its argument once (16 B); nothing else allocates.
	f("AppendResult small struct", 1, func() {
		buf, _ = AppendResult(buf[:0], msgs[0].ID, result)
	})
}
