// Command netpoll is the TCP ceiling: a bare cloudwego/netpoll server that
// answers every newline-delimited JSON-RPC request with a canned result
// carrying the request's id (the minimum a client can match), doing no MCP
// work. Notifications (no id) get no reply. Replies of one wakeup share one
// Flush, as erlmcp's loop does.
//
//	netpoll -addr 127.0.0.1:18084
package main

import (
	"bytes"
	"context"
	"flag"
	"log"

	"github.com/cloudwego/netpoll"
)

var (
	pre  = []byte(`{"jsonrpc":"2.0","id":`)
	post = []byte(`,"result":{"content":[{"type":"text","text":"hello"}]}}` + "\n")
	key  = []byte(`"id":`)
)

// idOf returns the raw id value of a request line, or nil.
func idOf(line []byte) []byte {
	i := bytes.Index(line, key)
	if i < 0 {
		return nil
	}
	v := bytes.TrimLeft(line[i+len(key):], " ")
	end := bytes.IndexAny(v, ",}")
	if end <= 0 {
		return nil
	}
	return bytes.TrimSpace(v[:end])
}

func onRequest(ctx context.Context, c netpoll.Connection) error {
	r, w := c.Reader(), c.Writer()
	for {
		n := r.Len()
		if n == 0 {
			break
		}
		buf, _ := r.Peek(n)
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			break
		}
		line, _ := r.Next(nl + 1)
		if id := idOf(line); id != nil {
			w.WriteBinary(pre)
			w.WriteBinary(id)
			w.WriteBinary(post)
		}
	}
	_ = r.Release()
	return w.Flush()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18084", "listen address")
	flag.Parse()
	ln, err := netpoll.CreateListener("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	loop, err := netpoll.NewEventLoop(onRequest)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("netpoll line ceiling on %s", *addr)
	log.Fatal(loop.Serve(ln))
}
