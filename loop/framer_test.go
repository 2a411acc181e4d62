package loop

import (
	"bytes"
	"strings"
	"testing"
)

// runFramer feeds chunks and returns frames, with "!" marking an oversize event.
func runFramer(max int, chunks ...string) []string {
	f := framer{max: max}
	var s testSink
	for _, c := range chunks {
		f.feed([]byte(c), &s)
	}
	f.reset()
	out := make([]string, len(s))
	for i, b := range s {
		if len(b) > 0 && b[0] == 0 {
			out[i] = "!" + string(b[1:])
		} else {
			out[i] = string(b)
		}
	}
	return out
}

// testSink records frames; an oversize line is recorded as a NUL byte and its head.
type testSink [][]byte

func (s *testSink) frame(p []byte)       { *s = append(*s, bytes.Clone(p)) }
func (s *testSink) oversize(head []byte) { *s = append(*s, append([]byte{0}, head...)) }

func TestFramer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		chunks []string
		want   []string
	}{
		{"one", 100, []string{"abc\n"}, []string{"abc"}},
		{"several", 100, []string{"a\nb\nc\n"}, []string{"a", "b", "c"}},
		{"crlf", 100, []string{"a\r\nb\r\n"}, []string{"a", "b"}},
		{"empty lines skipped", 100, []string{"\n\r\n\na\n\n"}, []string{"a"}},
		{"partial across chunks", 100, []string{"ab", "cd", "ef\ngh", "\n"}, []string{"abcdef", "gh"}},
		{"trailing partial kept", 100, []string{"a\nb"}, []string{"a"}},
		{"cr split from lf", 100, []string{"ab\r", "\n"}, []string{"ab"}},
		// "!head": an oversize line and the head the handler got (its first bytes, up to max).
		{"oversize in one chunk", 3, []string{"abcd\nxy\n"}, []string{"!abc", "xy"}},
		{"exactly max", 3, []string{"abc\n"}, []string{"abc"}},
		{"oversize streamed", 3, []string{"ab", "cd", "ef", "gh\nok\n"}, []string{"!ab", "ok"}},
		{"oversize tail", 3, []string{"ok\nabcdef", "gh", "\nyes\n"}, []string{"ok", "!abc", "yes"}},
		{"oversize joined at newline", 3, []string{"ab", "cd\nz\n"}, []string{"!ab", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runFramer(tt.max, tt.chunks...)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
