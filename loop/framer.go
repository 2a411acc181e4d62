package loop

import (
	"bytes"

	"github.com/erlmcp/erlmcp-go/pool"
)

// framer cuts a byte stream into '\n'-terminated frames. Complete frames
// inside one chunk are passed to the callback as sub-slices of that chunk
// (no copy); only the trailing incomplete frame of a chunk is copied, into a
// pooled buffer, so the transport can release its read buffer at once (netpoll
// re-runs OnRequest while unread bytes remain, so leaving them there spins).
//
// An unfinished line that grows past AdmitAbove is also dropped and skipped
// when the sink refuses its growth (Config.Admit, see admit.go).
//
// A line is "oversize" when its bytes before '\n' (a trailing '\r' included)
// exceed max. The oversize callback runs once per such line, as soon as the
// limit is crossed; the rest of the line is skipped as it arrives and never
// buffered.
//
// framer is not safe for concurrent use.
type framer struct {
	partial    *pool.Buffer // bytes of the incomplete frame carried between chunks; nil when none
	discarding bool         // skipping the remainder of an oversize line
	max        int
}

// sink receives the framer's output.
type sink interface {
	// frame receives one complete frame with the '\n' and one trailing '\r'
	// removed; empty frames are skipped. The slice is valid only until frame
	// returns.
	frame(p []byte)
	// oversize reports a line longer than the limit (once per line), with its first bytes
	// (up to the limit; what was buffered or arrived in this chunk), valid only until
	// oversize returns: a handler can find the request's id there (codec.PeekID).
	oversize(head []byte)
}

// feed processes one chunk, calling s for each frame and oversize line.
func (f *framer) feed(data []byte, s sink) {
	if f.discarding {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return
		}
		f.discarding = false
		data = data[i+1:]
	}
	if f.pending() > 0 {
		i := bytes.IndexByte(data, '\n')
		head := data
		if i >= 0 {
			head = data[:i]
		}
		if len(f.partial.B)+len(head) > f.max {
			s.oversize(f.partial.B) // the line's beginning; its id, if any, stands there
			f.partial.B = f.partial.B[:0]
			if i < 0 {
				f.discarding = true
				return
			}
			data = data[i+1:]
		} else {
			if i < 0 && !f.admit(len(f.partial.B)+len(head), s) {
				return
			}
			f.partial.B = append(f.partial.B, head...)
			if i < 0 {
				return
			}
			line := f.partial.B
			f.partial.B = f.partial.B[:0]
			emit(line, s)
			data = data[i+1:]
		}
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if i > f.max {
			s.oversize(data[:f.max])
		} else {
			emit(data[:i], s)
		}
		data = data[i+1:]
	}
	if len(data) == 0 {
		return
	}
	if len(data) > f.max {
		s.oversize(data[:f.max])
		f.discarding = true
		return
	}
	if !f.admit(f.pending()+len(data), s) {
		return
	}
	if f.partial == nil {
		f.partial = pool.Get(len(data))
	}
	f.partial.B = append(f.partial.B, data...)
}

func emit(line []byte, s sink) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > 0 {
		s.frame(line)
	}
}

// pending returns how many bytes of an incomplete frame are buffered.
func (f *framer) pending() int {
	if f.partial == nil {
		return 0
	}
	return len(f.partial.B)
}

// release gives the carry buffer back to the pool if it holds nothing
// (hibernation); it reports whether the framer now holds no memory.
func (f *framer) release() bool {
	if f.partial == nil {
		return true
	}
	if len(f.partial.B) > 0 {
		return false
	}
	f.partial.Release()
	f.partial = nil
	return true
}

// reset drops any buffered bytes and returns the carry buffer to the pool.
func (f *framer) reset() {
	if f.partial != nil {
		f.partial.Release()
		f.partial = nil
	}
	f.discarding = false
}
