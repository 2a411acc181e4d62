package server

import (
	"bufio"
	"strconv"
	"sync"
	"time"
)

// This file holds the server-sent-events side of Streamable HTTP: a stream is an ordered,
// bounded log of messages (the per-stream event store) that zero or one HTTP response
// writes out at a time. A POST whose handler streams, the session's standalone GET stream
// and the legacy /sse stream are all sseStreams. A writer that drops (client disconnect,
// CloseSSEStream) leaves the log behind; a GET with Last-Event-ID attaches a new writer
// that replays what the client missed and follows the rest.

// sseEvent is one message of a stream, numbered from 1.
type sseEvent struct {
	seq  uint64
	data []byte // owned
}

// sseStream is one SSE stream's event log. Safe for concurrent use. It implements Output
// for messages that belong to the stream (the session's unsolicited messages).
type sseStream struct {
	id  uint64 // 0 for the standalone GET stream, else the POST stream number in the session
	max int    // events retained for replay

	mu       sync.Mutex
	evs      []sseEvent // retained events, oldest first
	next     uint64     // seq of the next event
	sent     uint64     // highest seq written to some writer
	done     bool       // no event will be added (reply sent, or session ended)
	gen      uint64     // attachment generation; a writer whose gen differs stops
	attached bool
	closeReq time.Duration // >0: the handler asked to close the attached writer (polling)
	wake     chan struct{} // cap 1: something changed
}

func newSSEStream(id uint64, max int) *sseStream {
	if max <= 0 {
		max = 1
	}
	return &sseStream{id: id, max: max, next: 1, wake: make(chan struct{}, 1)}
}

func (st *sseStream) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// add appends a copy of msg to the log.
func (st *sseStream) add(msg []byte) {
	data := append([]byte(nil), msg...)
	st.mu.Lock()
	if st.done {
		st.mu.Unlock()
		return
	}
	st.evs = append(st.evs, sseEvent{seq: st.next, data: data})
	st.next++
	if len(st.evs) > st.max {
		// Drop the oldest; copy down so the backing array does not grow forever.
		n := copy(st.evs, st.evs[len(st.evs)-st.max:])
		clear(st.evs[n:])
		st.evs = st.evs[:n]
	}
	st.mu.Unlock()
	st.signal()
}

// finish marks the stream complete: writers end once they wrote everything.
func (st *sseStream) finish() {
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
	st.signal()
}

// finished reports whether the stream is complete and every event was written.
func (st *sseStream) finished() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.done && st.sent+1 >= st.next
}

// requestClose asks the attached writer to end the response after what it has written,
// telling the client to reconnect after retry (SSE polling, SEP-1699).
func (st *sseStream) requestClose(retry time.Duration) {
	if retry <= 0 {
		retry = time.Millisecond
	}
	st.mu.Lock()
	st.closeReq = retry
	st.mu.Unlock()
	st.signal()
}

// Output, for the streams that carry a session's unsolicited messages.
func (st *sseStream) Reply(msg []byte)      { st.add(msg) }
func (st *sseStream) Send(msg []byte) error { st.add(msg); return nil }
func (st *sseStream) Hold()                 {}
func (st *sseStream) Release()              {}

// attach makes the caller the stream's writer, displacing any other.
func (st *sseStream) attach() uint64 {
	st.mu.Lock()
	st.gen++
	g := st.gen
	st.attached = true
	st.mu.Unlock()
	st.signal()
	return g
}

// eventID is "<stream>_<seq>": which stream and where in it.
func eventID(dst []byte, stream, seq uint64) []byte {
	dst = strconv.AppendUint(dst, stream, 10)
	dst = append(dst, '_')
	return strconv.AppendUint(dst, seq, 10)
}

// parseEventID splits a Last-Event-ID made by eventID.
func parseEventID(s string) (stream, seq uint64, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			a, err1 := strconv.ParseUint(s[:i], 10, 64)
			b, err2 := strconv.ParseUint(s[i+1:], 10, 64)
			return a, b, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}

// sseWriter writes one HTTP response's worth of a stream.
type sseWriter struct {
	w         *bufio.Writer
	ids       bool            // write id: lines (resumable streams)
	keepalive time.Duration   // comment interval that also detects dead peers
	stop      <-chan struct{} // the session ended
	shutdown  <-chan struct{} // the server is stopping
	idbuf     []byte
}

func (sw *sseWriter) event(stream, seq uint64, data []byte) error {
	if sw.ids {
		sw.idbuf = eventID(append(sw.idbuf[:0], "id: "...), stream, seq)
		sw.idbuf = append(sw.idbuf, '\n')
		if _, err := sw.w.Write(sw.idbuf); err != nil {
			return err
		}
	}
	if _, err := sw.w.WriteString("event: message\ndata: "); err != nil {
		return err
	}
	if _, err := sw.w.Write(data); err != nil {
		return err
	}
	_, err := sw.w.WriteString("\n\n")
	return err
}

// priming writes an event with an id and empty data (and the retry hint), so a client
// can resume the stream before any message was sent (SEP-1699).
func (sw *sseWriter) priming(stream uint64, retry time.Duration) error {
	sw.idbuf = eventID(append(sw.idbuf[:0], "id: "...), stream, 0)
	sw.idbuf = append(sw.idbuf, '\n')
	if retry > 0 {
		sw.idbuf = append(sw.idbuf, "retry: "...)
		sw.idbuf = strconv.AppendInt(sw.idbuf, retry.Milliseconds(), 10)
		sw.idbuf = append(sw.idbuf, '\n')
	}
	sw.idbuf = append(sw.idbuf, "data: \n\n"...)
	if _, err := sw.w.Write(sw.idbuf); err != nil {
		return err
	}
	return sw.w.Flush()
}

// follow writes the events after cursor and then new ones as they come, until the stream
// is done and fully written, another writer attaches, a close is requested, stop closes, or
// a write fails. It runs on the connection's goroutine (fasthttp's body stream writer).
func (sw *sseWriter) follow(st *sseStream, gen, cursor uint64) {
	var tick <-chan time.Time
	if sw.keepalive > 0 {
		t := time.NewTicker(sw.keepalive)
		defer t.Stop()
		tick = t.C
	}
	var batch []sseEvent
	for {
		st.mu.Lock()
		if st.gen != gen {
			st.mu.Unlock()
			st.signal() // the wake may have been meant for the new writer
			return
		}
		batch = batch[:0]
		for _, e := range st.evs {
			if e.seq > cursor {
				batch = append(batch, e)
			}
		}
		if len(batch) == 0 && cursor+1 < st.next && cursor < st.next {
			cursor = st.next - 1 // events evicted before anyone read them: skip the gap
		}
		done := st.done
		closeReq := st.closeReq
		st.closeReq = 0
		st.mu.Unlock()

		for _, e := range batch {
			if sw.event(st.id, e.seq, e.data) != nil {
				sw.detach(st, gen)
				return
			}
			cursor = e.seq
		}
		if len(batch) > 0 {
			if sw.w.Flush() != nil {
				sw.detach(st, gen)
				return
			}
			st.mu.Lock()
			if cursor > st.sent {
				st.sent = cursor
			}
			st.mu.Unlock()
		}
		if closeReq > 0 {
			_, _ = sw.w.WriteString("retry: " + strconv.FormatInt(closeReq.Milliseconds(), 10) + "\n\n")
			_ = sw.w.Flush()
			sw.detach(st, gen)
			return
		}
		if done && len(batch) == 0 {
			sw.detach(st, gen)
			return
		}
		if len(batch) > 0 {
			continue // look again before sleeping
		}
		select {
		case <-st.wake:
		case <-sw.stop:
			sw.detach(st, gen)
			return
		case <-sw.shutdown:
			sw.detach(st, gen)
			return
		case <-tick:
			if _, err := sw.w.WriteString(": ping\n\n"); err != nil || sw.w.Flush() != nil {
				sw.detach(st, gen)
				return
			}
		}
	}
}

func (sw *sseWriter) detach(st *sseStream, gen uint64) {
	st.mu.Lock()
	if st.gen == gen {
		st.attached = false
	}
	st.mu.Unlock()
	st.signal() // let a waiter (another writer's takeover, reaper) look again
}
