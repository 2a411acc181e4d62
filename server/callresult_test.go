package server

import (
	"bytes"
	"testing"

	"github.com/erlmcp/erlmcp-go/codec"
)

var callResultTexts = []string{
	"", "hello", "a\"b\\c/d", "\b\f", "line\nbreak\ttab\r\x00\x01\x1f\x7f", "<html>&amp;</html>", "é ✓ 😀",
	"\u2028 and \u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate bytes", string(bytes.Repeat([]byte("x"), 5000)),
}

func checkCallResult(t *testing.T, res *CallToolResult) {
	t.Helper()
	want, err := codec.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendCallResult([]byte("prefix"), res)
	if !ok {
		if string(got) != "prefix" {
			t.Fatalf("refused but wrote %q", got)
		}
		return
	}
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("appendCallResult(%+v):\n got %s\nwant %s", res, got[len("prefix"):], want)
	}
}

func TestCallResultEncoding(t *testing.T) {
	fast := 0
	cases := []*CallToolResult{
		{}, {Content: []Content{}}, {Content: []Content{}, IsError: true},
		{Content: []Content{Text("a"), Text("b")}, IsError: true},
		{Content: []Content{&TextContent{Type: "weird\"type", Text: "x"}}},
		{Content: []Content{Text("a")}, Meta: Meta{}},
		{Content: []Content{Text("a")}, Meta: Meta{"k": 1}},
		{Content: []Content{Text("a")}, StructuredContent: map[string]any{"sum": 3}},
		{Content: []Content{&TextContent{Type: "text", Text: "a", Annotations: &Annotations{}}}},
		{Content: []Content{&TextContent{Type: "text", Text: "a", Meta: Meta{}}}},
		{Content: []Content{Image("aGk=", "image/png")}},
		{Content: []Content{Text("a"), Image("aGk=", "image/png")}},
	}
	for _, s := range callResultTexts {
		cases = append(cases, &CallToolResult{Content: []Content{Text(s)}}, &CallToolResult{Content: []Content{Text(s), Text(s)}, IsError: true})
	}
	for _, c := range cases {
		checkCallResult(t, c)
		if _, ok := appendCallResult(nil, c); ok {
			fast++
		}
	}
	if fast < 2*len(callResultTexts)+4 {
		t.Fatalf("fast encoder took only %d cases", fast)
	}
}

func FuzzCallResultEncoding(f *testing.F) {
	for _, s := range callResultTexts {
		f.Add(s, "text", false)
	}
	f.Fuzz(func(t *testing.T, text, typ string, isErr bool) {
		checkCallResult(t, &CallToolResult{Content: []Content{&TextContent{Type: typ, Text: text}, Text(text)}, IsError: isErr})
	})
}
