package server

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkTCPToolsCall measures tools/call (echo) over loopback TCP against the real
// server: ping-pong (one request in flight per connection) and pipelined (depth requests
// in flight). It reports req/s and p50/p99 latency per request.
//
//	go test -run '^$' -bench BenchmarkTCPToolsCall -benchtime 200000x ./server/
func BenchmarkTCPToolsCall(b *testing.B) {
	for _, bc := range []struct {
		conns, depth int
	}{{1, 1}, {16, 1}, {64, 1}, {16, 16}} {
		b.Run(fmt.Sprintf("conns=%d/depth=%d", bc.conns, bc.depth), func(b *testing.B) {
			benchTCP(b, bc.conns, bc.depth)
		})
	}
}

func benchTCP(b *testing.B, conns, depth int) {
	addr := startTCP(b, newDemoServer(b, Config{}))
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}` + "\n")
	per := b.N/conns + 1
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	b.ResetTimer()
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			r := bufio.NewReaderSize(conn, 64<<10)
			w := bufio.NewWriterSize(conn, 64<<10)
			sent := make([]time.Time, 0, per)
			own := make([]time.Duration, 0, per)
			inflight := 0
			for done := 0; done < per; {
				for inflight < depth && len(sent) < per {
					w.Write(req)
					sent = append(sent, time.Now())
					inflight++
				}
				w.Flush()
				if _, err := r.ReadSlice('\n'); err != nil {
					b.Error(err)
					return
				}
				own = append(own, time.Since(sent[done]))
				done++
				inflight--
			}
			lat[i] = own
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
