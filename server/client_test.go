package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/loop"
)

// startTCP serves s on a loopback port with loop and returns the address.
func startTCP(t testing.TB, s *Server, tweak ...func(*loop.Config)) string {
	t.Helper()
	cfg := loop.Config{Addr: "127.0.0.1:0", Handler: s.LineHandler(), MaxFrameBytes: 1 << 20}
	for _, f := range tweak {
		f(&cfg)
	}
	ln, err := loop.Listen(cfg)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go ln.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ln.Shutdown(ctx)
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// waitFor polls cond every 5ms for up to d, failing with what otherwise.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newDemoServer returns a server with the demo registrations.
func newDemoServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	if err := RegisterDemo(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// msg is a decoded JSON-RPC message as the test client sees it.
type msg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	} `json:"error,omitempty"`
}

// client is a line-protocol MCP client over a real socket.
type client struct {
	t      testing.TB
	conn   net.Conn
	r      *bufio.Reader
	mu     sync.Mutex
	nextID int
	// notes holds notifications and server requests received while waiting for replies.
	notes []msg
	// onRequest, when set, answers server→client requests as they arrive.
	onRequest func(m msg) any
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
}

// dialFrom is dial from the loopback source address ip (127.0.0.x): another client for
// the limits keyed by address.
func dialFrom(t testing.TB, ip, addr string) *client {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
}

func (c *client) send(line string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one message (5 s deadline).
func (c *client) recv() msg {
	c.t.Helper()
	m, err := c.tryRecv(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) tryRecv(d time.Duration) (msg, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(line, &m); err != nil {
		return msg{}, fmt.Errorf("reply is not JSON: %v: %q", err, line)
	}
	if m.JSONRPC != "2.0" {
		return msg{}, fmt.Errorf("reply without jsonrpc 2.0: %q", line)
	}
	return m, nil
}

// call sends a request and waits for its reply, keeping notifications in c.notes and
// answering server requests with onRequest.
func (c *client) call(method string, params any) msg {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	p, _ := json.Marshal(params)
	if params == nil {
		p = []byte("{}")
	}
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, p))
	return c.waitID(fmt.Sprint(id))
}

func (c *client) waitID(id string) msg {
	c.t.Helper()
	for {
		m := c.recv()
		if m.Method != "" && len(m.ID) > 0 && c.onRequest != nil {
			res, _ := json.Marshal(c.onRequest(m))
			c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, m.ID, res))
			continue
		}
		if m.Method != "" {
			c.notes = append(c.notes, m)
			continue
		}
		if string(m.ID) == id {
			return m
		}
		c.t.Fatalf("reply for id %s while waiting for %s", m.ID, id)
	}
}

func (c *client) initialize(version string) msg {
	c.t.Helper()
	m := c.call("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    map[string]any{"sampling": map[string]any{}, "elicitation": map[string]any{}, "roots": map[string]any{"listChanged": true}},
		"clientInfo":      map[string]any{"name": "test-client", "version": "1.0"},
	})
	if m.Error != nil {
		c.t.Fatalf("initialize: %s", m.Error.Message)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return m
}

// result decodes a successful reply's result into v.
func result[T any](t testing.TB, m msg) T {
	t.Helper()
	var v T
	if m.Error != nil {
		t.Fatalf("unexpected error %d: %s", m.Error.Code, m.Error.Message)
	}
	if err := json.Unmarshal(m.Result, &v); err != nil {
		t.Fatalf("decoding result %s: %v", m.Result, err)
	}
	return v
}

// wantError asserts an error reply with the given code whose message contains sub.
func wantError(t testing.TB, m msg, code int, sub string) {
	t.Helper()
	if m.Error == nil {
		t.Fatalf("want error %d, got result %s", code, m.Result)
	}
	if m.Error.Code != code {
		t.Fatalf("want error code %d, got %d (%s)", code, m.Error.Code, m.Error.Message)
	}
	if !strings.Contains(m.Error.Message, sub) {
		t.Fatalf("error message %q does not mention %q", m.Error.Message, sub)
	}
}
