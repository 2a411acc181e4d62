package loop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

var benchMsg = []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")

// BenchmarkPingPong: N loopback connections, each sending one request and
// waiting for its reply before the next (echo handler). Reports req/s.
func BenchmarkPingPong(b *testing.B) {
	for _, conns := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			s := startServer(b, Config{Handler: &echoHandler{}})
			cs := make([]net.Conn, conns)
			for i := range cs {
				c, err := net.Dial("tcp", s.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				cs[i] = c
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(benchMsg)))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := b.N/conns + 1
			for _, c := range cs {
				wg.Add(1)
				go func(c net.Conn) {
					defer wg.Done()
					buf := make([]byte, len(benchMsg))
					for i := 0; i < per; i++ {
						if _, err := c.Write(benchMsg); err != nil {
							b.Error(err)
							return
						}
						if _, err := io.ReadFull(c, buf); err != nil {
							b.Error(err)
							return
						}
					}
				}(c)
			}
			wg.Wait()
			b.ReportMetric(float64(per*conns)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// BenchmarkPipelined: each connection writes batches of `depth` requests and
// reads the replies (many frames per wakeup, one write per wakeup).
func BenchmarkPipelined(b *testing.B) {
	for _, conns := range []int{1, 16} {
		const depth = 64
		b.Run(fmt.Sprintf("conns=%d/depth=%d", conns, depth), func(b *testing.B) {
			s := startServer(b, Config{Handler: &echoHandler{}})
			batch := make([]byte, 0, depth*len(benchMsg))
			for i := 0; i < depth; i++ {
				batch = append(batch, benchMsg...)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(benchMsg)))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			rounds := b.N/(conns*depth) + 1
			for i := 0; i < conns; i++ {
				c, err := net.Dial("tcp", s.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				wg.Add(1)
				go func(c net.Conn) {
					defer wg.Done()
					r := bufio.NewReaderSize(c, 64<<10)
					buf := make([]byte, len(batch))
					for j := 0; j < rounds; j++ {
						if _, err := c.Write(batch); err != nil {
							b.Error(err)
							return
						}
						if _, err := io.ReadFull(r, buf); err != nil {
							b.Error(err)
							return
						}
					}
				}(c)
			}
			wg.Wait()
			b.ReportMetric(float64(rounds*conns*depth)/time.Since(start).Seconds(), "req/s")
		})
	}
}
