package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/loop"
)

// The example serves its typed tool over real TCP: schema-checked input, structured output.
func TestForecastOverTCP(t *testing.T) {
	s := newServer()
	ln, err := loop.Listen(loop.Config{Addr: "127.0.0.1:0", Handler: s.LineHandler()})
	if err != nil {
		t.Fatal(err)
	}
	go ln.Serve()
	defer ln.Shutdown(context.Background())
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	ask := func(line string) string {
		conn.Write([]byte(line + "\n"))
		out, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := ask(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Oslo","days":2}}}`)
	if !strings.Contains(got, `"structuredContent":{"city":"Oslo","tempC":[`) {
		t.Fatalf("forecast = %s", got)
	}
	got = ask(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"forecast","arguments":{"days":2}}}`)
	if !strings.Contains(got, `"code":-32602`) || !strings.Contains(got, "city") {
		t.Fatalf("missing city = %s", got)
	}
	got = ask(`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"weather://city/oslo"}}`)
	if !strings.Contains(got, "Station data for OSLO") {
		t.Fatalf("template read = %s", got)
	}
}
