package server

import (
	"io"
	"strings"
	"testing"

	"github.com/erlmcp/erlmcp-go/codec"
)

// TestDemoNote: write_note sets erlmcp://demo/note and tells its subscribers, not others.
func TestDemoNote(t *testing.T) {
	s := newDemoServer(t, Config{})
	addr := startTCP(t, s)
	sub, other := dial(t, addr), dial(t, addr)
	sub.initialize("2025-11-25")
	other.initialize("2025-11-25")
	if m := sub.call("resources/subscribe", map[string]any{"uri": DemoNoteURI}); m.Error != nil {
		t.Fatal(m.Error.Message)
	}
	w := other.call("tools/call", map[string]any{"name": "write_note", "arguments": map[string]any{"text": "hello cluster"}})
	if w.Error != nil || !strings.Contains(string(w.Result), "note written (13 bytes)") {
		t.Fatalf("write_note = %s %+v", w.Result, w.Error)
	}
	m := sub.recv()
	if m.Method != NotificationResourceUpdated || !strings.Contains(string(m.Params), `"uri":"erlmcp://demo/note"`) {
		t.Fatalf("want resources/updated for the note, got %+v", m)
	}
	read := result[ReadResourceResult](t, other.call("resources/read", map[string]any{"uri": DemoNoteURI}))
	if read.Contents[0].Text != "hello cluster" {
		t.Fatalf("note = %q", read.Contents[0].Text)
	}
	if len(other.notes) != 0 {
		t.Fatalf("a session that did not subscribe was notified: %+v", other.notes)
	}
	wantError(t, other.call("tools/call", map[string]any{"name": "write_note", "arguments": map[string]any{"text": 5}}), -32602, "text")
}

// TestDemoNoteEmptyText: a text resource with empty text is sent with "text":"" (the TS
// SDK clients reject a text resource without it), through the daemon over TCP and HTTP.
func TestDemoNoteEmptyText(t *testing.T) {
	d := startDaemon(t, func(st *Settings) { st.RateLimiter.Enabled = false })
	c := dial(t, d.TCPAddr().String())
	c.initialize("2025-11-25")
	m := c.call("resources/read", map[string]any{"uri": DemoNoteURI})
	if m.Error != nil || !strings.Contains(string(m.Result), `"text":""`) {
		t.Fatalf("resources/read %s over TCP: %s %+v", DemoNoteURI, m.Result, m.Error)
	}
	hc := newHTTPClient(t, "http://"+d.TCPAddr().String()+"/mcp")
	hc.initialize()
	resp := hc.post(`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"`+DemoNoteURI+`"}}`, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"text":""`) {
		t.Fatalf("resources/read over HTTP: %d %s", resp.StatusCode, b)
	}
}

// TestResourceContentsWire: the two wire forms of ResourceContents.
func TestResourceContentsWire(t *testing.T) {
	for _, tc := range []struct {
		in   ResourceContents
		want string
	}{
		{ResourceContents{URI: "a://x", MimeType: "text/plain"}, `{"uri":"a://x","mimeType":"text/plain","text":""}`},
		{ResourceContents{URI: "a://x", Text: "hi"}, `{"uri":"a://x","text":"hi"}`},
		{ResourceContents{URI: "a://x", MimeType: "image/png", Blob: "AAEC"}, `{"uri":"a://x","mimeType":"image/png","blob":"AAEC"}`},
		{ResourceContents{URI: "a://x", Text: "dropped", Blob: "AAEC", Meta: Meta{"k": 1}}, `{"uri":"a://x","blob":"AAEC","_meta":{"k":1}}`},
	} {
		b, err := codec.Marshal(&ReadResourceResult{Contents: []*ResourceContents{&tc.in}})
		if err != nil || string(b) != `{"contents":[`+tc.want+`]}` {
			t.Errorf("%+v: %s %v, want %s", tc.in, b, err, tc.want)
		}
	}
}
