package loop

import (
	"io"
	"net"
	"strings"
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

// In hibernation mode an HTTP connection reads through httpConn: bytes arrive intact
// across netpoll's buffer releases, a connection quiet for HibernateAfter counts as
// hibernated (it holds no read buffer), and reading again wakes it.
func TestHTTPConnHibernates(t *testing.T) {
	s := startServer(t, Config{
		Handler:        &echoHandler{},
		HibernateAfter: 500 * time.Millisecond,                    // long enough that the echo below is never slept through
		HTTP:           func(c net.Conn) { _, _ = io.Copy(c, c) }, // echo through the wrapped conn
	})
	c := dial(t, s)
	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading the echo of %d bytes: %v", len(msg), err)
		}
		if string(got) != msg {
			t.Fatalf("echo differs from what was sent (%d bytes)", len(msg))
		}
	}
	echo("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, "the quiet HTTP connection hibernated", func() bool { return s.Stats().Hibernated == 1 })
	big := "POST / HTTP/1.1\r\n" + strings.Repeat("0123456789abcdef", 40<<10/16) // past one 16 KiB buffer
	echo(big)
	if n := s.Stats().Hibernated; n != 0 {
		t.Fatalf("hibernated %d after the connection read again, want 0", n)
	}
	waitFor(t, "hibernated again", func() bool { return s.Stats().Hibernated == 1 })
	c.Close()
	waitFor(t, "the closed connection no longer counted", func() bool { return s.Stats().Hibernated == 0 && s.Stats().ActiveHTTP == 0 })
}
