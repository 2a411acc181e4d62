package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeMCP answers JSON-RPC like a tiny MCP server: initialize, ping,
// tools/list, tools/call (echo). failMethod, when set, gets error -32601.
type fakeMCP struct {
	failMethod string
	sse        bool // HTTP: answer calls as text/event-stream
	sessions   sync.Map
	nextSess   atomic.Int64
	inits      atomic.Int64
	deletes    atomic.Int64
}

type rpcIn struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// answer returns the reply line for msg, or nil for a notification.
func (f *fakeMCP) answer(msg []byte) []byte {
	var m rpcIn
	if err := json.Unmarshal(msg, &m); err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`)
	}
	if len(m.ID) == 0 {
		return nil
	}
	var result string
	switch m.Method {
	case f.failMethod:
		return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, m.ID))
	case "initialize":
		f.inits.Add(1)
		result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}`
	case "ping":
		result = `{}`
	case "tools/list":
		result = `{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}`
	case "tools/call":
		result = `{"content":[{"type":"text","text":"hello \"id\":1 {"}]}`
	default:
		return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"unknown"}}`, m.ID))
	}
	return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","result":%s,"id":%s}`, result, m.ID))
}

// startFakeTCP serves f as newline-delimited JSON-RPC on a loopback port.
func startFakeTCP(t testing.TB, f *fakeMCP) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				w := bufio.NewWriter(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if out := f.answer(line); out != nil {
						w.Write(out)
						w.WriteByte('\n')
					}
					if r.Buffered() == 0 {
						if w.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startFakeHTTP serves f as Streamable HTTP on /mcp.
func startFakeHTTP(t testing.TB, f *fakeMCP) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mcp" {
			http.NotFound(w, r)
			return
		}
		sid := r.Header.Get("Mcp-Session-Id")
		if r.Method == http.MethodDelete {
			if _, ok := f.sessions.LoadAndDelete(sid); !ok {
				http.Error(w, "no session", http.StatusNotFound)
				return
			}
			f.deletes.Add(1)
			return
		}
		body, _ := io.ReadAll(r.Body)
		stateless := r.Header.Get("MCP-Protocol-Version") == StatelessVersion
		switch {
		case stateless:
			if !strings.Contains(string(body), `"io.modelcontextprotocol/protocolVersion":"2026-07-28"`) {
				http.Error(w, "stateless request without _meta", http.StatusBadRequest)
				return
			}
		case strings.Contains(string(body), `"initialize"`):
			sid = fmt.Sprintf("s%d", f.nextSess.Add(1))
			f.sessions.Store(sid, true)
			w.Header().Set("Mcp-Session-Id", sid)
		default:
			if _, ok := f.sessions.Load(sid); !ok {
				http.Error(w, "unknown session", http.StatusNotFound)
				return
			}
		}
		out := f.answer(body)
		if out == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if f.sse && !strings.Contains(string(body), `"initialize"`) {
			w.Header().Set("Content-Type", "text/event-stream")
			// A notification first, and a flush: the body goes out chunked,
			// as a streaming server sends it.
			fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"id\":3}}\n\n")
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", out)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}
