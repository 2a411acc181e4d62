package loop

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A Read on the connection handed to Config.HTTP honours the read deadline: it is
// cut with ErrHTTPTimeout about the deadline after it began (within a reaper tick),
// and a Read that data arrives for in time is not.
func TestHTTPConnReadDeadline(t *testing.T) {
	const dl = 300 * time.Millisecond
	type result struct {
		took time.Duration
		err  error
	}
	got := make(chan result, 2)
	s := startServer(t, Config{
		Handler:     &echoHandler{},
		ReadTimeout: 200 * time.Millisecond, // reaper tick 50 ms
		HTTP: func(c net.Conn) {
			buf := make([]byte, 64)
			for range 2 {
				start := time.Now()
				_ = c.SetReadDeadline(start.Add(dl))
				_, err := c.Read(buf)
				got <- result{time.Since(start), err}
			}
		},
	})
	c := dial(t, s)
	if _, err := io.WriteString(c, "GET "); err != nil { // sniffed as HTTP, read at once
		t.Fatal(err)
	}
	if r := <-got; r.err != nil {
		t.Fatalf("first Read: %v", r.err)
	}
	var r result
	select { // nothing more is sent
	case r = <-got:
	case <-time.After(5 * time.Second):
		t.Fatalf("Read with a %v deadline still blocked after 5 s", dl)
	}
	if !errors.Is(r.err, ErrHTTPTimeout) {
		t.Fatalf("Read past its deadline: err %v after %v, want ErrHTTPTimeout", r.err, r.took)
	}
	if r.took < dl || r.took > dl+time.Second {
		t.Fatalf("Read cut after %v, want %v plus at most a reaper tick", r.took, dl)
	}
}

// fasthttp's timeouts hold on the main port's HTTP side, in both hibernation modes: a
// request left half-sent is closed after ReadTimeout, an idle keep-alive connection
// after IdleTimeout; a handler running longer than both is not cut, and requests spaced
// within IdleTimeout keep their connection.
func TestHTTPConnFasthttpTimeouts(t *testing.T) {
	const readTimeout, idleTimeout = 400 * time.Millisecond, 600 * time.Millisecond
	for _, hib := range []time.Duration{-1, 100 * time.Millisecond} {
		fs := &fasthttp.Server{
			ReadTimeout:       readTimeout,
			IdleTimeout:       idleTimeout,
			ReduceMemoryUsage: hib > 0,
			Handler: func(ctx *fasthttp.RequestCtx) {
				if string(ctx.Path()) == "/slow" {
					time.Sleep(2 * idleTimeout)
				}
				ctx.SetBodyString("ok " + string(ctx.Path()))
			},
		}
		s := startServer(t, Config{
			Handler:        &echoHandler{},
			ReadTimeout:    200 * time.Millisecond, // reaper tick 25-50 ms
			HibernateAfter: hib,
			HTTP:           func(c net.Conn) { _ = fs.ServeConn(c) },
		})
		name := map[bool]string{false: "hibernation off", true: "hibernation on"}[hib > 0]
		// closedAfter waits for the server to close c and reports how long that took.
		closedAfter := func(c net.Conn, start time.Time) time.Duration {
			t.Helper()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("%s: connection not closed by the server: %v", name, err)
			}
			return time.Since(start)
		}
		get := func(br *bufio.Reader, c net.Conn, path string) {
			t.Helper()
			if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatalf("%s: GET %s: %v", name, path, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: GET %s: %v", name, path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "ok "+path {
				t.Fatalf("%s: GET %s: %d %q", name, path, resp.StatusCode, body)
			}
		}

		// Half-sent request: ReadTimeout.
		c := dial(t, s)
		start := time.Now()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		if took := closedAfter(c, start); took < readTimeout || took > readTimeout+time.Second {
			t.Fatalf("%s: half-sent request closed after %v, want ReadTimeout %v plus a tick", name, took, readTimeout)
		}

		// Keep-alive: requests within IdleTimeout, a slow handler, then idle.
		c = dial(t, s)
		br := bufio.NewReader(c)
		for i := range 3 {
			get(br, c, "/"+strings.Repeat("a", i+1))
			time.Sleep(idleTimeout / 2)
		}
		get(br, c, "/slow")
		start = time.Now()
		if took := closedAfter(c, start); took < idleTimeout || took > idleTimeout+time.Second {
			t.Fatalf("%s: idle keep-alive connection closed after %v, want IdleTimeout %v plus a tick", name, took, idleTimeout)
		}
	}
}
