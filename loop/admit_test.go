package loop

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// admitTestSink is a testSink whose admission can be switched off; "R" marks a refusal.
type admitTestSink struct {
	testSink
	no bool
}

func (s *admitTestSink) admitGrowth() bool { return !s.no }
func (s *admitTestSink) refused()          { s.testSink = append(s.testSink, []byte("R")) }

func TestFramerAdmit(t *testing.T) {
	big := strings.Repeat("x", AdmitAbove)
	f := framer{max: 1 << 20}
	s := &admitTestSink{}
	f.feed([]byte("a\n"+big), s) // up to AdmitAbove buffered without asking
	if f.pending() != AdmitAbove {
		t.Fatalf("pending %d, want %d", f.pending(), AdmitAbove)
	}
	s.no = true
	f.feed([]byte("yy"), s) // growth past the threshold refused: dropped
	if f.pending() != 0 || f.partial != nil {
		t.Fatalf("refused line still buffered: %d bytes", f.pending())
	}
	f.feed([]byte(big+big), s)   // the rest of the line is skipped, not buffered
	f.feed([]byte("zz\nb\n"), s) // line ends; next line delivered
	small := "c"
	f.feed([]byte(small), s) // a small partial is not asked about
	f.feed([]byte("\n"+big+"x"), s)
	f.reset()
	var got []string
	for _, b := range s.testSink {
		got = append(got, string(b))
	}
	if want := "a|R|b|c|R"; strings.Join(got, "|") != want {
		t.Fatalf("got %q, want %s", got, want)
	}
}

// overloadHandler is an echoHandler that answers Config.Admit refusals.
type overloadHandler struct {
	echoHandler
	refusals atomic.Int64
}

func (h *overloadHandler) Overloaded(c *Conn) {
	h.refusals.Add(1)
	c.Reply([]byte("overloaded"))
}

func TestAdmitRefusesConnectionsAndGrowingLines(t *testing.T) {
	var no atomic.Bool
	h := &overloadHandler{}
	s := startServer(t, Config{Handler: h, Admit: func() bool { return !no.Load() }})

	// Refused at Open: one answer, then EOF; Open and Close never run.
	no.Store(true)
	c := dial(t, s)
	c.Write([]byte("hello\n"))
	r := bufio.NewReader(c)
	if got := readLines(t, r, 1); got[0] != "overloaded" {
		t.Fatalf("got %q", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("refused connection not closed: %v", err)
	}
	if h.opened.Load() != 0 {
		t.Fatal("Open called for a refused connection")
	}

	// Admitted connection: a line growing past AdmitAbove while refused is dropped and
	// answered; the connection stays and serves the next line.
	no.Store(false)
	c = dial(t, s)
	r = bufio.NewReader(c)
	c.Write([]byte("one\n" + strings.Repeat("x", AdmitAbove/2)))
	if got := readLines(t, r, 1); got[0] != "one" {
		t.Fatalf("got %q", got)
	}
	no.Store(true)
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for i := 0; i < 8; i++ {
		c.Write(chunk)
	}
	if got := readLines(t, r, 1); got[0] != "overloaded" {
		t.Fatalf("got %q", got)
	}
	for i := 0; i < 64; i++ { // 2 MiB more of the refused line: skipped
		c.Write(chunk)
	}
	no.Store(false)
	c.Write([]byte("end\ntwo\n"))
	if got := readLines(t, r, 1); got[0] != "two" {
		t.Fatalf("got %q after the refused line", got)
	}
	if n := s.Stats().Refused; n != 2 {
		t.Fatalf("Stats.Refused = %d, want 2", n)
	}
	if h.opened.Load() != 1 {
		t.Fatalf("opened %d", h.opened.Load())
	}
}

// Without OverloadHandler a refused line closes the connection (the client must not wait
// for an answer to a line that was dropped).
func TestAdmitWithoutOverloadHandlerCloses(t *testing.T) {
	var no atomic.Bool
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h, Admit: func() bool { return !no.Load() }})
	c := dial(t, s)
	c.Write([]byte("one\n"))
	r := bufio.NewReader(c)
	readLines(t, r, 1)
	no.Store(true)
	c.Write(bytes.Repeat([]byte("x"), 2*AdmitAbove))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// EOF, or a reset: the server closes with the rest of the refused line unread in its
	// receive buffer, and then the kernel answers with RST (seen under -race).
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection with a refused line not closed: %v", err)
	}
	waitFor(t, "Close", func() bool { return h.closed.Load() == 1 })
	if errs := h.errs(); !errors.Is(errs[0], ErrOverloaded) {
		t.Fatalf("close error %v, want ErrOverloaded", errs[0])
	}
}
