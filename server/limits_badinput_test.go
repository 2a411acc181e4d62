package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// healthyPinger is a client on its own connection that pings the server every interval
// and records each round trip, to show that hostile input elsewhere does not affect it.
type healthyPinger struct {
	mu    sync.Mutex
	rtts  []time.Duration
	fails []string
	stop  chan struct{}
	done  chan struct{}
}

func startHealthyPinger(t *testing.T, addr string, interval time.Duration) *healthyPinger {
	t.Helper()
	// Another client than the attacker: another address (127.0.0.2), so another
	// principal for the rate limiter and the session caps, as a real bystander would be.
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	conn, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &healthyPinger{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer conn.Close()
		r := bufio.NewReader(conn)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for id := 1; ; id++ {
			select {
			case <-p.stop:
				return
			case <-tk.C:
			}
			start := time.Now()
			conn.SetDeadline(start.Add(5 * time.Second))
			_, err := fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", id)
			var line string
			if err == nil {
				line, err = r.ReadString('\n')
			}
			rtt := time.Since(start)
			p.mu.Lock()
			switch {
			case err != nil:
				p.fails = append(p.fails, err.Error())
			case !strings.Contains(line, fmt.Sprintf(`"id":%d,"result"`, id)):
				p.fails = append(p.fails, "bad reply: "+snippet(line))
			default:
				p.rtts = append(p.rtts, rtt)
			}
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *healthyPinger) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// take returns and resets the round trips and failures recorded so far.
func (p *healthyPinger) take() (rtts []time.Duration, fails []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rtts, fails = p.rtts, p.fails
	p.rtts, p.fails = nil, nil
	return rtts, fails
}

// The bad-input catalog against the daemon's real path (Limits installed: rate
// limiter, memory guard, schema validation; loop with a 2 s read timeout): each hostile
// input gets a clear error where the protocol allows one (else a bounded close), and a
// healthy client pinging on its own connection all along keeps getting answers within
// a bounded latency.
func TestBadInputCatalogDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections and waits for read timeouts")
	}
	const readTimeout = 2 * time.Second
	d := startDaemon(t, func(st *Settings) {
		st.Transports.TCP.ReadTimeoutMs = int(readTimeout / time.Millisecond)
		// The healthy client pings 10 times a second; the default 1000/min would refuse it
		// after 100 s, which this test never reaches, but leave room.
		st.RateLimiter.MaxRequestsPerMinute = 6000
	})
	addr := d.TCPAddr().String()
	healthy := startHealthyPinger(t, addr, 100*time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		healthy.mu.Lock()
		n := len(healthy.rtts)
		healthy.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("healthy client not answered")
		}
	}
	baseLine := d.tcp.Stats().ActiveLine // the pinger
	if baseLine != 1 {
		t.Fatalf("%d line connections before the catalog, want the healthy client's", baseLine)
	}

	// checkHealthy asserts the healthy client was answered during the case, every time,
	// within the bound.
	checkHealthy := func(t *testing.T, bound time.Duration) {
		t.Helper()
		time.Sleep(250 * time.Millisecond) // at least two pings after the case
		rtts, fails := healthy.take()
		if len(fails) > 0 {
			t.Fatalf("healthy client failed: %v", fails)
		}
		if len(rtts) == 0 {
			t.Fatal("healthy client got no answers during the case")
		}
		worst := slices.Max(rtts)
		t.Logf("healthy client: %d pings, worst %v", len(rtts), worst)
		if worst > bound {
			t.Fatalf("healthy client's ping took %v (bound %v)", worst, bound)
		}
	}
	// settled waits until the server holds no line connection but the pinger's.
	settled := func(t *testing.T, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for d.tcp.Stats().ActiveLine > baseLine {
			if time.Now().After(deadline) {
				t.Fatalf("%d line connections left over (want %d)", d.tcp.Stats().ActiveLine, baseLine)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const bound = 500 * time.Millisecond

	lines := []struct {
		name string
		line string
		code int
		sub  string
	}{
		{"malformed JSON", `{"jsonrpc":"2.0":"method":"tools/list","params":{},"id":2}`, -32700, ""},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"\xff\xfe\"}}}", -32700, "UTF-8"},
		{"10^5-deep nesting", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`, -32700, "depth"},
		{"10^5-deep objects", `{"jsonrpc":"2.0","id":1,"method":"ping","params":` + strings.Repeat(`{"a":`, 100000) + `1` + strings.Repeat("}", 100000) + `}`, -32700, "depth"},
		{"huge exponent id", `{"jsonrpc":"2.0","id":1e999999999,"method":"ping"}`, -32600, "id"},
		{"huge number argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":1e999999999}}}`, -32602, "echo"},
		{"100K-digit argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":9` + strings.Repeat("9", 100000) + `}}}`, -32602, "echo"},
	}
	for _, tc := range lines {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(tc.line)
			m := c.recv()
			wantError(t, m, tc.code, tc.sub)
			if p := c.call("ping", nil); p.Error != nil {
				t.Fatalf("connection broken after the bad line: %s", p.Error.Message)
			}
			checkHealthy(t, bound)
		})
	}

	t.Run("100K-digit id", func(t *testing.T) {
		// An integer id is a valid id however long: it is answered with the same digits,
		// so the sender can match the reply.
		id := "1" + strings.Repeat("0", 100000)
		c := dial(t, addr)
		c.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"ping"}`)
		m := c.recv()
		if m.Error != nil || string(m.ID) != id {
			t.Fatalf("reply id %d bytes (want the %d sent), error %v", len(m.ID), len(id), m.Error)
		}
		checkHealthy(t, bound)
	})

	t.Run("slowloris 1 byte/s", func(t *testing.T) {
		// 1 byte a second never completes a line: the read timeout (from the frame's first
		// byte) closes the connection, bounded by read_timeout plus a reaper tick.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		closed := make(chan time.Duration, 1)
		go func() {
			conn.SetReadDeadline(start.Add(readTimeout + 5*time.Second))
			io.Copy(io.Discard, conn)
			closed <- time.Since(start)
		}()
		payload := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
		var took time.Duration
	send:
		for i := 0; i < len(payload); i++ {
			if _, err := conn.Write([]byte{payload[i]}); err != nil {
				break
			}
			select {
			case took = <-closed:
				break send
			case <-time.After(time.Second):
			}
		}
		if took == 0 {
			took = <-closed
		}
		t.Logf("slowloris connection closed after %v (read_timeout %v)", took, readTimeout)
		if took < readTimeout/2 || took > readTimeout+2*time.Second {
			t.Fatalf("slowloris closed after %v, want about read_timeout %v", took, readTimeout)
		}
		checkHealthy(t, bound)
		settled(t, 2*time.Second)
	})

	t.Run("half-open connections", func(t *testing.T) {
		// Half-closed after a request (nc -N): the answer still arrives, then the server
		// closes its side too.
		for range 50 {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}` + "\n"))
			conn.(*net.TCPConn).CloseWrite()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(conn)
			conn.Close()
			if err != nil || !strings.Contains(string(b), `"id":7,"result"`) {
				t.Fatalf("half-closed client: %q, %v", b, err)
			}
		}
		// Half-open: a partial frame and then silence (a peer that vanished without FIN):
		// reclaimed by the read timeout, the healthy client unaffected meanwhile.
		var held []net.Conn
		for range 200 {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"meth`))
			held = append(held, conn)
		}
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		checkHealthy(t, bound)
		settled(t, readTimeout+3*time.Second)
		for _, c := range held {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("silent half-open connection not closed by the server: %v", err)
			}
		}
	})

	t.Run("RST mid-frame", func(t *testing.T) {
		for range 500 {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ec`))
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
		checkHealthy(t, bound)
		settled(t, 5*time.Second)
	})

	t.Run("10K connections opened and dropped", func(t *testing.T) {
		// Client and server share this process's 20,000 descriptors: 5,000 at a time.
		const total, batch, dialers = 10000, 5000, 32
		var opened atomic.Int64
		for done := 0; done < total; done += batch {
			conns := make([]net.Conn, batch)
			var wg sync.WaitGroup
			var dialErr atomic.Value
			next := atomic.Int64{}
			for range dialers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= batch {
							return
						}
						c, err := net.DialTimeout("tcp", addr, 5*time.Second)
						if err != nil {
							dialErr.Store(err)
							return
						}
						if i%2 == 0 { // half of them say something first
							c.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"))
						}
						conns[i] = c
						opened.Add(1)
					}
				}()
			}
			wg.Wait()
			for i, c := range conns {
				if c == nil {
					continue
				}
				if i%3 == 0 {
					c.(*net.TCPConn).SetLinger(0) // a third reset, the rest close
				}
				c.Close()
			}
			if err := dialErr.Load(); err != nil {
				t.Fatalf("dial: %v", err)
			}
			settled(t, 10*time.Second)
		}
		t.Logf("%d connections opened and dropped", opened.Load())
		checkHealthy(t, 2*bound) // 10,000 accepts and closes on the same CPUs as the pinger
		if n := d.Server().Stats().Sessions; n > 1 {
			t.Fatalf("%d sessions left (want the healthy client's)", n)
		}
	})
}
