package loop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoHandler replies to each frame with the frame; a frame starting with
// "async:" is answered by another goroutine after the given delay under a Hold.
type echoHandler struct {
	opened, closed atomic.Int64
	mu             sync.Mutex
	closeErrs      []error
	delay          time.Duration
}

func (h *echoHandler) Open(c *Conn) { h.opened.Add(1) }

func (h *echoHandler) Frame(c *Conn, frame []byte) {
	if rest, ok := bytes.CutPrefix(frame, []byte("async:")); ok {
		msg := bytes.Clone(rest)
		c.Hold()
		go func() {
			defer c.Release()
			time.Sleep(h.delay)
			if err := c.Send(msg); err != nil {
				panic(fmt.Sprintf("async Send: %v", err))
			}
		}()
		return
	}
	c.Reply(frame)
}

func (h *echoHandler) Oversize(c *Conn, limit int, head []byte) {
	c.Reply([]byte(fmt.Sprintf("oversize %d", limit)))
}

func (h *echoHandler) Close(c *Conn, err error) {
	h.mu.Lock()
	h.closeErrs = append(h.closeErrs, err)
	h.mu.Unlock()
	h.closed.Add(1)
}

func (h *echoHandler) errs() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.closeErrs...)
}

// startServer listens on 127.0.0.1:0 and serves until the test ends.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func dial(t testing.TB, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func readLines(t testing.TB, r *bufio.Reader, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading line %d of %d: %v (got %q)", i+1, n, err, out)
		}
		out = append(out, strings.TrimSuffix(l, "\n"))
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEcho(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"one", []string{"{\"id\":1}\n"}, []string{"{\"id\":1}"}},
		{"crlf and empty lines", []string{"a\r\n\n\r\nb\n"}, []string{"a", "b"}},
		{"partial across writes", []string{"ab", "c", "d\ne", "f\n"}, []string{"abcd", "ef"}},
		{"many in one write", []string{strings.Repeat("x\n", 100)}, strings.Split(strings.Repeat("x", 100), "")},
	}
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s)
			for _, w := range tt.writes {
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond) // separate wakeups
			}
			got := readLines(t, bufio.NewReader(c), len(tt.want))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRepliesBatchedPerWakeup(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h})
	c := dial(t, s)
	before := s.Stats()
	if _, err := c.Write([]byte(strings.Repeat("{\"jsonrpc\":\"2.0\"}\n", 500))); err != nil {
		t.Fatal(err)
	}
	readLines(t, bufio.NewReader(c), 500)
	st := s.Stats()
	frames, wakeups, writes := st.Frames-before.Frames, st.Wakeups-before.Wakeups, st.Writes-before.Writes
	t.Logf("500 frames: %d wakeups, %d writes", wakeups, writes)
	if frames != 500 || writes > wakeups {
		t.Fatalf("frames=%d wakeups=%d writes=%d: want 500 frames and at most one write per wakeup", frames, wakeups, writes)
	}
}

// sendHandler answers each frame from 8 goroutines at once with Send while
// the event goroutine also Replies.
type sendHandler struct{ echoHandler }

func (h *sendHandler) Frame(c *Conn, frame []byte) {
	var wg sync.WaitGroup
	c.Hold()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Send([]byte("send")); err != nil {
				panic(err)
			}
		}()
	}
	c.Reply([]byte("reply"))
	go func() { wg.Wait(); c.Release() }()
}

func TestSendConcurrent(t *testing.T) {
	h := &sendHandler{}
	s := startServer(t, Config{Handler: h})
	c := dial(t, s)
	for i := 0; i < 20; i++ {
		fmt.Fprintf(c, "req %d\n", i)
	}
	lines := readLines(t, bufio.NewReader(c), 20*9)
	var sends, replies int
	for _, l := range lines {
		switch l {
		case "send":
			sends++
		case "reply":
			replies++
		default:
			t.Fatalf("corrupted line %q", l)
		}
	}
	if sends != 160 || replies != 20 {
		t.Fatalf("sends=%d replies=%d", sends, replies)
	}
}

func TestOversize(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h, MaxFrameBytes: 1024})
	c := dial(t, s)
	r := bufio.NewReader(c)
	// A 1 MiB line written in pieces, then a normal line.
	big := bytes.Repeat([]byte("z"), 64<<10)
	for i := 0; i < 16; i++ {
		if _, err := c.Write(big); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("\nnext\n" + strings.Repeat("y", 2000) + "\nlast\n")); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, r, 4)
	want := []string{"oversize 1024", "next", "oversize 1024", "last"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := s.Stats().Oversize; n != 2 {
		t.Fatalf("Stats.Oversize = %d, want 2", n)
	}
}

func TestHalfCloseSync(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h})
	for i := 0; i < 20; i++ {
		c := dial(t, s)
		var req bytes.Buffer
		for j := 0; j < 50; j++ {
			fmt.Fprintf(&req, "{\"id\":%d}\n", j)
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		all, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		if got := bytes.Count(all, []byte("\n")); got != 50 {
			t.Fatalf("conn %d: got %d replies before close, want 50", i, got)
		}
	}
}

func TestHalfCloseAsync(t *testing.T) {
	h := &echoHandler{delay: 300 * time.Millisecond}
	s := startServer(t, Config{Handler: h})
	c := dial(t, s)
	if _, err := c.Write([]byte("sync\nasync:later\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(all) != "sync\nlater\n" {
		t.Fatalf("got %q, want sync and later replies", all)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("connection closed after %v, before the async reply was due", d)
	}
	waitFor(t, "Close callback", func() bool { return h.closed.Load() == 1 })
	if errs := h.errs(); !errors.Is(errs[0], io.EOF) {
		t.Fatalf("Close err = %v, want io.EOF", errs[0])
	}
}

func TestIdleTimeoutAndHibernation(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h, IdleTimeout: 400 * time.Millisecond, HibernateAfter: 40 * time.Millisecond})
	c := dial(t, s)
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "hi\n")
	readLines(t, r, 1)
	waitFor(t, "hibernation", func() bool { return s.Stats().Hibernated == 1 })
	fmt.Fprintf(c, "again\n") // wakes up
	if got := readLines(t, r, 1); got[0] != "again" {
		t.Fatalf("got %q after hibernation", got)
	}
	waitFor(t, "wake from hibernation", func() bool { return s.Stats().Hibernated <= 1 })
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("read after idle = %v, want EOF", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("idle close after %v, want >= ~400ms", d)
	}
	waitFor(t, "Close callback", func() bool { return h.closed.Load() == 1 })
	if errs := h.errs(); !errors.Is(errs[0], ErrIdleTimeout) {
		t.Fatalf("Close err = %v, want ErrIdleTimeout", errs[0])
	}
}

func TestIdleTimeoutWaitsForHold(t *testing.T) {
	h := &echoHandler{delay: 500 * time.Millisecond}
	s := startServer(t, Config{Handler: h, IdleTimeout: 100 * time.Millisecond})
	c := dial(t, s)
	fmt.Fprintf(c, "async:slow\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := readLines(t, bufio.NewReader(c), 1)
	if got[0] != "slow" {
		t.Fatalf("got %q", got)
	}
}

func TestReadTimeoutSlowloris(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h, ReadTimeout: 150 * time.Millisecond})
	c := dial(t, s)
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 100; i++ { // one byte every 20ms, never a newline
		if _, err := c.Write([]byte("x")); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
		if time.Since(start) > time.Second {
			break
		}
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err == nil {
		t.Fatal("connection still open")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("slowloris connection lived %v", d)
	}
	waitFor(t, "Close callback", func() bool { return h.closed.Load() == 1 })
	if errs := h.errs(); !errors.Is(errs[0], ErrReadTimeout) {
		t.Fatalf("Close err = %v, want ErrReadTimeout", errs[0])
	}
}

func TestSniff(t *testing.T) {
	h := &echoHandler{}
	var httpConns atomic.Int64
	s := startServer(t, Config{Handler: h, HTTP: func(c net.Conn) {
		httpConns.Add(1)
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		for {
			l, err := r.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		body := "line=" + strings.TrimSpace(line)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	}})
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"get", []string{"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"}, "line=GET /health HTTP/1.1"},
		{"one byte first", []string{"G", "ET /live HTTP/1.1\r\n\r\n"}, "line=GET /live HTTP/1.1"},
		{"post in pieces", []string{"PO", "ST /mcp HTTP/1.1\r\n\r\n"}, "line=POST /mcp HTTP/1.1"},
		{"json line", []string{"{\"id\":1}\n"}, "{\"id\":1}\n"},
		{"whitespace line", []string{" [1]\n"}, " [1]\n"},
		{"P but not HTTP", []string{"P", "ING\n"}, "PING\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s)
			for _, w := range tt.writes {
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if strings.HasPrefix(tt.want, "line=") {
				all, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasSuffix(all, []byte(tt.want)) {
					t.Fatalf("got %q, want body %q", all, tt.want)
				}
				return
			}
			buf := make([]byte, len(tt.want))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != tt.want {
				t.Fatalf("got %q, %v; want %q", buf, err, tt.want)
			}
		})
	}
	if httpConns.Load() != 3 {
		t.Fatalf("HTTP got %d connections, want 3", httpConns.Load())
	}
}

func TestShutdownDrainsHeldWork(t *testing.T) {
	h := &echoHandler{delay: 300 * time.Millisecond}
	cfg := Config{Handler: h, Addr: "127.0.0.1:0"}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	busy := dial(t, s)
	idle := dial(t, s)
	fmt.Fprintf(idle, "x\n")
	readLines(t, bufio.NewReader(idle), 1)
	fmt.Fprintf(busy, "async:done\n")
	waitFor(t, "hold", func() bool { return s.Stats().Holds == 1 })

	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("Shutdown returned after %v, before held work finished", d)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, _ := io.ReadAll(busy)
	if string(all) != "done\n" {
		t.Fatalf("busy conn got %q, want the held reply then close", all)
	}
	if h.closed.Load() != 2 {
		t.Fatalf("%d Close callbacks after Shutdown, want 2", h.closed.Load())
	}
	for _, err := range h.errs() {
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Close err = %v, want ErrServerClosed", err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		// the listener is closed: dial must fail (or be closed at once)
		t.Log("dial after Shutdown succeeded at TCP level")
	}
}

func TestRSTAndGarbage(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h, MaxFrameBytes: 4096})
	good := dial(t, s)
	gr := bufio.NewReader(good)
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		switch i % 3 {
		case 0:
			tc.Write([]byte("{\"jsonrpc\":\"2.0\",\"id\":1,\"meth"))
		case 1:
			garbage := make([]byte, 10000)
			for j := range garbage {
				garbage[j] = byte(j*7 + i)
			}
			tc.Write(garbage)
		case 2:
			tc.Write([]byte("\x00\xff\xfe\r\n\n\x16\x03\x01"))
		}
		time.Sleep(time.Millisecond)
		tc.SetLinger(0)
		tc.Close()
		fmt.Fprintf(good, "ping %d\n", i)
		if got := readLines(t, gr, 1); got[0] != fmt.Sprintf("ping %d", i) {
			t.Fatalf("good conn got %q", got)
		}
	}
	waitFor(t, "closed conns", func() bool { return s.Stats().ActiveLine == 1 })
}

func TestManyConns(t *testing.T) {
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h})
	const conns, rounds = 1000, 20
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			r := bufio.NewReader(c)
			for j := 0; j < rounds; j++ {
				msg := fmt.Sprintf("{\"conn\":%d,\"id\":%d}\n", i, j)
				if _, err := c.Write([]byte(msg)); err != nil {
					errs <- err
					return
				}
				l, err := r.ReadString('\n')
				if err != nil || l != msg {
					errs <- fmt.Errorf("conn %d round %d: got %q, %v", i, j, l, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if f := s.Stats().Frames; f < conns*rounds {
		t.Fatalf("frames %d, want >= %d", f, conns*rounds)
	}
}

func TestServeStream(t *testing.T) {
	h := &echoHandler{delay: 50 * time.Millisecond}
	in := strings.NewReader("a\nasync:b\n" + strings.Repeat("q", 100) + "\nc")
	var out bytes.Buffer
	err := ServeStream(context.Background(), Config{Handler: h, MaxFrameBytes: 10}, "stdio", in, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\noversize 10\nb\n" {
		t.Fatalf("stdio output %q", out.String())
	}
	if h.opened.Load() != 1 || h.closed.Load() != 1 {
		t.Fatalf("opened %d closed %d", h.opened.Load(), h.closed.Load())
	}
}

func TestServeStreamNetConnSniff(t *testing.T) {
	h := &echoHandler{}
	srv, cli := net.Pipe()
	var gotHTTP atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- ServeStream(context.Background(), Config{Handler: h, HTTP: func(c net.Conn) {
			gotHTTP.Store(true)
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "%s", line)
		}}, "tls", srv, srv)
	}()
	go cli.Write([]byte("GET / HTTP/1.1\r\n"))
	line, _ := bufio.NewReader(cli).ReadString('\n')
	if line != "GET / HTTP/1.1\r\n" || !gotHTTP.Load() {
		t.Fatalf("HTTP got %q", line)
	}
	<-done
}

func TestListenerHandoffAndKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &echoHandler{}
	s, err := Listen(Config{Handler: h, Listener: ln, KeepAlive: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	if s.Addr().String() != ln.Addr().String() {
		t.Fatalf("Addr %v, want %v", s.Addr(), ln.Addr())
	}
	c := dial(t, s)
	fmt.Fprintf(c, "handoff\n")
	if got := readLines(t, bufio.NewReader(c), 1); got[0] != "handoff" {
		t.Fatalf("got %q", got)
	}
	s.mu.Lock()
	var fd int
	for _, sc := range s.conns {
		if sc != nil {
			fd = sc.fd
		}
	}
	s.mu.Unlock()
	idle, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
	if err != nil || idle != 7 {
		t.Fatalf("TCP_KEEPIDLE = %d, %v; want 7", idle, err)
	}
}

func TestServeStreamContextCancel(t *testing.T) {
	h := &echoHandler{}
	srv, cli := net.Pipe()
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeStream(ctx, Config{Handler: h}, "tls", srv, srv) }()
	go io.Copy(io.Discard, cli)
	cli.Write([]byte("x\n"))
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeStream did not return after cancel")
	}
	if h.closed.Load() != 1 {
		t.Fatalf("Close callbacks %d", h.closed.Load())
	}
}

// bigHandler replies 1 MiB to every frame.
type bigHandler struct{ echoHandler }

func (h *bigHandler) Frame(c *Conn, frame []byte) { c.Reply(bytes.Repeat([]byte("b"), 1<<20)) }

func TestWriteTimeoutSlowReader(t *testing.T) {
	h := &bigHandler{}
	s := startServer(t, Config{Handler: h, WriteTimeout: 200 * time.Millisecond})
	c := dial(t, s)
	_ = c.SetReadBuffer(4096)
	for i := 0; i < 20; i++ {
		if _, err := c.Write([]byte("go\n")); err != nil {
			break
		}
	}
	waitFor(t, "Close callback", func() bool { return h.closed.Load() == 1 })
	if errs := h.errs(); !errors.Is(errs[0], ErrWriteTimeout) {
		t.Fatalf("Close err = %v, want ErrWriteTimeout", errs[0])
	}
}

// A connection that sends nothing also hibernates (netpoll's eager read
// buffer is released), then serves normally once it speaks, with and without
// an HTTP hook (sniffing).
func TestHibernateBeforeFirstByte(t *testing.T) {
	for _, withHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("http=%v", withHTTP), func(t *testing.T) {
			h := &echoHandler{}
			cfg := Config{Handler: h, HibernateAfter: 30 * time.Millisecond}
			if withHTTP {
				cfg.HTTP = func(c net.Conn) {}
			}
			s := startServer(t, cfg)
			c := dial(t, s)
			waitFor(t, "hibernation before the first byte", func() bool { return s.Stats().Hibernated == 1 })
			r := bufio.NewReader(c)
			fmt.Fprintf(c, "first\n")
			if got := readLines(t, r, 1); got[0] != "first" {
				t.Fatalf("got %q", got)
			}
			waitFor(t, "hibernation after a frame", func() bool { return s.Stats().Hibernated == 1 })
			fmt.Fprintf(c, "second\n")
			if got := readLines(t, r, 1); got[0] != "second" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestTrimmer(t *testing.T) {
	var calls int
	tr := trimmer{freeMemory: func() { calls++ }}
	sec := int64(time.Second)
	now := 100 * sec
	if tr.after(now, trimMinConns-1) || calls != 0 {
		t.Fatal("trimmed below trimMinConns")
	}
	now += sec
	if tr.after(now, 1) {
		t.Fatal("trimmed while the wave goes on")
	}
	now += sec
	if !tr.after(now, 0) || calls != 1 {
		t.Fatal("no trim once the wave settled")
	}
	now += sec
	if tr.after(now, trimMinConns) || tr.after(now+sec, 0) {
		t.Fatal("trimmed within trimMinInterval")
	}
	now += int64(trimMinInterval)
	if !tr.after(now, 0) || calls != 2 {
		t.Fatal("no trim after trimMinInterval")
	}
	// A wave that never settles is trimmed after trimMaxDelay.
	start := now + sec
	for now = start; now-start < int64(trimMaxDelay); now += sec {
		if tr.after(now, trimMinConns) {
			t.Fatalf("trimmed %v into an ongoing wave", time.Duration(now-start))
		}
	}
	if !tr.after(now, 1) || calls != 3 {
		t.Fatal("ongoing wave not trimmed after trimMaxDelay")
	}
}
