package loop

import (
	"io"
	"net"
	"testing"
	"time"
)

// A wave of connections that close (HTTP ones here, whose sessions outlive them) makes
// the reaper return memory to the OS once it settles, as a wave of hibernations does;
// connections that stay open and awake do not.
func TestTrimAfterCloses(t *testing.T) {
	s := startServer(t, Config{
		Handler:        &echoHandler{},
		HibernateAfter: time.Hour, // nothing hibernates: only the closes can cause a trim
		HTTP:           func(c net.Conn) { _, _ = io.Copy(io.Discard, c) },
	})
	conns := make([]net.Conn, trimMinConns)
	for i := range conns {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	waitFor(t, "every connection handed to HTTP", func() bool { return s.Stats().ActiveHTTP == uint64(len(conns)) })
	time.Sleep(2*maxTick + 100*time.Millisecond) // two sweeps with every connection open
	if n := s.Stats().Trims; n != 0 {
		t.Fatalf("%d trims while every connection is open and none hibernated", n)
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Trims == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no trim 10 s after %d connections closed (active HTTP %d)", len(conns), s.Stats().ActiveHTTP)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
