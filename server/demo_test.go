package server

import (
	"strings"
	"testing"
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
