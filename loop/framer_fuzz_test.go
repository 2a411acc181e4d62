package loop

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzFramer feeds data in two chunks (data[:half], data[half:]) and compares
// the frames with bytes.Split semantics: every '\n'-terminated line with a
// trailing '\r' removed, empty lines skipped, lines longer than max reported
// as oversize (also the unterminated tail, which the framer reports as soon as
// it crosses the limit) with a head that is the line's beginning.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"), uint8(3), uint8(64))
	f.Add([]byte("a\r\nbb\n\n\r\nccc"), uint8(1), uint8(2))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint8(5), uint8(8))
	f.Add([]byte("\x00\xff\n\n\r\r\n"), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, half, max uint8) {
		h := int(half)
		if h > len(data) {
			h = len(data)
		}
		limit := int(max) + 1
		var s testSink
		fr := framer{max: limit}
		fr.feed(data[:h], &s)
		fr.feed(data[h:], &s)
		fr.reset()
		got := [][]byte(s)

		var want [][]byte
		lines := bytes.Split(data, []byte("\n"))
		for i, l := range lines {
			last := i == len(lines)-1
			if len(l) > limit {
				want = append(want, append([]byte{0}, l...)) // oversize: its head is a prefix of l
				continue
			}
			if last {
				break
			}
			l = bytes.TrimSuffix(l, []byte("\r"))
			if len(l) > 0 {
				want = append(want, l)
			}
		}
		same := func(g, w []byte) bool {
			if len(w) > 0 && w[0] == 0 { // the head: a non-empty prefix of the line, at most limit bytes
				return len(g) > 1 && g[0] == 0 && len(g)-1 <= limit && bytes.HasPrefix(w[1:], g[1:])
			}
			return bytes.Equal(g, w)
		}
		if !slices.EqualFunc(got, want, same) {
			t.Fatalf("data %q half %d max %d:\ngot  %q\nwant %q", data, h, limit, got, want)
		}
	})
}
