package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
)

// A slow tool runs on a worker: a ping sent after it on the same connection is answered
// first, and the tool's reply follows.
func TestSlowToolDoesNotBlockPing(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	c.send(`{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"sleep","arguments":{"ms":700}}}`)
	start := time.Now()
	c.send(`{"jsonrpc":"2.0","id":"fast","method":"ping"}`)
	first := c.recv()
	if string(first.ID) != `"fast"` {
		t.Fatalf("first reply is %s, want the ping", first.ID)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("ping took %v behind a slow tool", d)
	}
	second := c.recv()
	if string(second.ID) != `"slow"` || !strings.Contains(string(second.Result), "slept 700ms") {
		t.Fatalf("second reply = %+v", second)
	}
}

func TestProgressNotifications(t *testing.T) {
	c := dial(t, startTCP(t, newDemoServer(t, Config{})))
	c.initialize("2025-11-25")
	c.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":60,"steps":3},"_meta":{"progressToken":"tok-1"}}}`)
	c.waitID("7")
	if len(c.notes) != 3 {
		t.Fatalf("want 3 progress notifications, got %d: %+v", len(c.notes), c.notes)
	}
	for i, n := range c.notes {
		var p ProgressParams
		json.Unmarshal(n.Params, &p)
		if n.Method != NotificationProgress || string(p.ProgressToken) != `"tok-1"` || p.Progress != float64(i+1) || p.Total != 3 {
			t.Fatalf("progress %d = %s %s", i, n.Method, n.Params)
		}
	}
}

func TestCancellation(t *testing.T) {
	s := New(Config{})
	cancelled := make(chan error, 1)
	AddTool(s, &Tool{Name: "wait"}, func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, any, error) {
		select {
		case <-ctx.Done():
			cancelled <- ctx.Err()
			return nil, nil, ctx.Err()
		case <-time.After(10 * time.Second):
			cancelled <- nil
			return &CallToolResult{}, nil, nil
		}
	})
	c := dial(t, startTCP(t, s))
	c.initialize("2025-11-25")
	c.send(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"wait"}}`)
	time.Sleep(50 * time.Millisecond)
	c.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,"reason":"user"}}`)
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ended with %v, want context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("handler context not cancelled")
	}
	// No reply for the cancelled request: the next message is the ping's answer.
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
}

// Server→client requests: a tool asks the client for sampling, elicitation and roots and
// returns what it got.
func TestServerToClientRequests(t *testing.T) {
	s := New(Config{})
	AddTool(s, &Tool{Name: "ask"}, func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, any, error) {
		sm, err := r.CreateMessage(ctx, &CreateMessageParams{MaxTokens: 10, Messages: []*SamplingMessage{{Role: "user", Content: Text("hi")}}})
		if err != nil {
			return nil, nil, err
		}
		el, err := r.Elicit(ctx, &ElicitParams{Message: "name?", RequestedSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}}}`)})
		if err != nil {
			return nil, nil, err
		}
		roots, err := r.ListRoots(ctx)
		if err != nil {
			return nil, nil, err
		}
		text := fmt.Sprintf("%s|%s|%s|%s", sm.Model, sm.Content.(*TextContent).Text, el.Content["name"], roots.Roots[0].URI)
		return &CallToolResult{Content: []Content{Text(text)}}, nil, nil
	})
	c := dial(t, startTCP(t, s))
	c.initialize("2025-11-25")
	var seen []string
	c.onRequest = func(m msg) any {
		seen = append(seen, m.Method)
		switch m.Method {
		case "sampling/createMessage":
			return map[string]any{"role": "assistant", "model": "m1", "content": map[string]any{"type": "text", "text": "sampled"}}
		case "elicitation/create":
			return map[string]any{"action": "accept", "content": map[string]any{"name": "Ada"}}
		case "roots/list":
			return map[string]any{"roots": []any{map[string]any{"uri": "file:///work"}}}
		}
		return nil
	}
	res := result[CallToolResult](t, c.call("tools/call", map[string]any{"name": "ask"}))
	if got := res.Content[0].(*TextContent).Text; got != "m1|sampled|Ada|file:///work" {
		t.Fatalf("tool result = %q", got)
	}
	if strings.Join(seen, ",") != "sampling/createMessage,elicitation/create,roots/list" {
		t.Fatalf("server requests = %v", seen)
	}
}

func TestServerToClientRequestTimeoutAndError(t *testing.T) {
	s := New(Config{ClientRequestTimeout: 200 * time.Millisecond})
	AddTool(s, &Tool{Name: "ask"}, func(ctx context.Context, r *Request, in struct{}) (*CallToolResult, any, error) {
		_, err := r.ListRoots(ctx)
		return &CallToolResult{Content: []Content{Text(fmt.Sprint(err))}, IsError: true}, nil, nil
	})
	c := dial(t, startTCP(t, s))
	c.initialize("2025-11-25")
	// Never answer: the tool sees a timeout.
	c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask"}}`)
	req := c.recv()
	if req.Method != "roots/list" {
		t.Fatalf("want roots/list, got %+v", req)
	}
	cancel := c.recv()
	if cancel.Method != NotificationCancelled {
		t.Fatalf("want notifications/cancelled after the timeout, got %+v", cancel)
	}
	res := c.recv()
	if !strings.Contains(string(res.Result), "did not answer roots/list") {
		t.Fatalf("tool result = %s", res.Result)
	}
	// Answer with an error: the tool sees it.
	c.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ask"}}`)
	req = c.recv()
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"roots not supported"}}`, req.ID))
	res = c.recv()
	if !strings.Contains(string(res.Result), "roots not supported") {
		t.Fatalf("tool result = %s", res.Result)
	}
}

// A client that writes its requests and then shuts down its write side (nc -N) still gets
// every answer, including one produced later by a worker.
func TestHalfCloseGetsReplies(t *testing.T) {
	addr := startTCP(t, newDemoServer(t, Config{}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"jsonrpc":"2.0","method":"initialize","params":{},"id":1}` + "\n" +
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"sleep","arguments":{"ms":300}},"id":2}` + "\n" +
		`{"jsonrpc":"2.0","method":"tools/list","params":{},"id":3}` + "\n"))
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	dec := json.NewDecoder(conn)
	for {
		var m msg
		if err := dec.Decode(&m); err != nil {
			break
		}
		got = append(got, string(m.ID))
	}
	if strings.Join(got, ",") != "1,3,2" {
		t.Fatalf("replies after half-close = %v, want 1,3,2", got)
	}
}

func TestConcurrentConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	addr := startTCP(t, newDemoServer(t, Config{}))
	const conns, calls = 1000, 10
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			dec := json.NewDecoder(conn)
			fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`+"\n")
			var m msg
			if err := dec.Decode(&m); err != nil || m.Error != nil {
				errs <- fmt.Errorf("conn %d initialize: %v %+v", i, err, m.Error)
				return
			}
			for j := 1; j <= calls; j++ {
				fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":%d}}}`+"\n", j, i, j)
				var m msg
				if err := dec.Decode(&m); err != nil {
					errs <- fmt.Errorf("conn %d call %d: %v", i, j, err)
					return
				}
				want := fmt.Sprintf(`"structuredContent":{"sum":%d}`, i+j)
				if string(m.ID) != fmt.Sprint(j) || !strings.Contains(string(m.Result), want) {
					errs <- fmt.Errorf("conn %d call %d: got %s %s", i, j, m.ID, m.Result)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestBatches(t *testing.T) {
	addr := startTCP(t, newDemoServer(t, Config{}))
	batch := `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}},{"jsonrpc":"2.0","id":3,"method":"nope"}]`
	t.Run("refused from 2025-06-18", func(t *testing.T) {
		c := dial(t, addr)
		c.initialize("2025-06-18")
		c.send(batch)
		m := c.recv()
		wantError(t, m, -32600, "batches are not supported in protocol version 2025-06-18")
	})
	t.Run("refused before initialize", func(t *testing.T) {
		c := dial(t, addr)
		c.send(batch)
		wantError(t, c.recv(), -32600, "batches are not supported")
	})
	t.Run("accepted on 2025-03-26", func(t *testing.T) {
		c := dial(t, addr)
		c.initialize("2025-03-26")
		c.send(batch)
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var replies []msg
		if err := json.Unmarshal(line, &replies); err != nil {
			t.Fatalf("batch reply is not an array: %s", line)
		}
		if len(replies) != 3 || string(replies[0].ID) != "1" || string(replies[1].ID) != "2" || replies[2].Error == nil || replies[2].Error.Code != -32601 {
			t.Fatalf("batch replies = %s", line)
		}
	})
}

var _ = codec.CodeParseError
