// Package redistest runs a real redis-server for tests: on a unix socket in the test's
// temporary directory, with no persistence, killed at cleanup. It fails the test (never
// skips it) when redis-server is not installed.
//
//	r := redistest.Start(t)
//	cfg.RedisURL = r.URL()
//	r.Kill()    // an outage
//	r.Restart() // same socket, empty data
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process (or none, between Kill and Restart).
type Server struct {
	t      testing.TB
	bin    string
	dir    string
	socket string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Binary returns the path of redis-server, or fails t naming the package to install.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ERLMCP_REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (%v): cluster tests need a real Redis; install it with `apt-get install redis-server` (or set ERLMCP_REDIS_SERVER to its path)", err)
	}
	return p
}

// Start runs redis-server on a unix socket in t.TempDir() and waits until it answers.
// Cleanup kills it.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		t.Fatal(err)
	}
	// A unix socket path must stay short (108 bytes); t.TempDir() can be long.
	s := &Server{t: t, bin: Binary(t), dir: dir, socket: filepath.Join(dir, "redis.sock"), log: filepath.Join(dir, "redis.log")}
	t.Cleanup(func() {
		s.Kill()
		os.RemoveAll(dir)
	})
	s.Restart()
	return s
}

// URL is the go-redis URL of the server (unix socket, db 0).
func (s *Server) URL() string { return "unix://" + s.socket + "?db=0" }

// Socket is the unix socket path.
func (s *Server) Socket() string { return s.socket }

// Restart starts redis-server on the same socket (after Kill: an outage ends) and waits
// until it answers PING, at most 10 s.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("redistest: Restart while redis-server is running")
	}
	_ = os.Remove(s.socket)
	cmd := exec.Command(s.bin, "--port", "0", "--unixsocket", s.socket, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", s.log)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingOK(s.socket) {
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("redistest: redis-server exited at start: %s", strings.TrimSpace(string(b)))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.t.Fatalf("redistest: redis-server did not answer PING on %s within 10s", s.socket)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.cmd, s.done = cmd, done
}

// Kill stops redis-server with SIGKILL and waits until it is gone (an outage). Idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Do sends one command (inline form, e.g. "KEYS *") and returns the raw RESP reply, for
// tests that look at what is stored.
func (s *Server) Do(command string) (string, error) {
	c, err := net.DialTimeout("unix", s.socket, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", command); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

// Command sends one command as a RESP array of args (any bytes, spaces included: EVAL
// scripts) and returns the reply as Do does.
func (s *Server) Command(args ...string) (string, error) {
	c, err := net.DialTimeout("unix", s.socket, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

// readReply reads one RESP2 reply as text: simple values as is, arrays one element a line.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("redistest: empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		var parts []string
		for i := 0; i < n; i++ {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %q", line)
}

func pingOK(socket string) bool {
	c, err := net.DialTimeout("unix", socket, 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
