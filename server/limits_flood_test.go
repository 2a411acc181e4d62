package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
)

// rssBytes reads this process's resident set size.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// TestMemoryGuardFlood is the goal: 200 connections each sending a 10 MiB message
// against a 512 MiB memory limit must not take the process past the limit plus slack, and
// the server must serve a healthy client afterwards on its own. It runs the daemon's real
// path (memory guard wired to loop.Config.Admit and to request admission). It is bounded
// (every client has deadlines, the whole flood at most 60 s) and runs only with
// ERLMCP_FLOOD_TEST=1 (make flood), alone, because it sets the process-wide Go memory
// limit and measures the RSS of the whole test binary.
func TestMemoryGuardFlood(t *testing.T) {
	if os.Getenv("ERLMCP_FLOOD_TEST") != "1" {
		t.Skip("set ERLMCP_FLOOD_TEST=1 and run alone: make flood, or go test -run TestMemoryGuardFlood ./server/")
	}
	const (
		limit   = 512 << 20
		slack   = 128 << 20
		clients = 200
		msgSize = 10 << 20
	)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	d := startDaemon(t, func(st *Settings) {
		st.MemoryGuard.Enabled = true
		st.MemoryGuard.MemoryLimitBytes = limit
		st.MemoryGuard.SampleIntervalMs = 20
		st.MessageSize.MaxRequestSize = msgSize + 4096
		st.MessageSize.MaxResponseSize = 1 << 20
		st.RateLimiter.Enabled = false
	})
	lim := d.Limits()
	var trips atomic.Int64
	lim.MemoryGuard().OnChange(func(_, n limits.MemoryState) {
		if n == limits.MemoryOverloaded {
			trips.Add(1)
		}
	})
	addr := d.TCPAddr().String()

	var peak atomic.Int64
	stop := make(chan struct{})
	var mon sync.WaitGroup
	mon.Add(1)
	go func() {
		defer mon.Done()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if r := rssBytes(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()

	chunk := bytes.Repeat([]byte("a"), 64<<10)
	head := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`)
	tail := []byte("\"}}}\n")
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	var omu sync.Mutex
	outcomes := map[string]int{}
	note := func(k string) { omu.Lock(); outcomes[k]++; omu.Unlock() }
	code := regexp.MustCompile(`"code":(-?[0-9]+)`)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				note(fmt.Sprint("dial failed: ", err))
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			r := bufio.NewReader(c)
			refused := func() {
				// The server answered -32004 and closed (refused at connect), or reset the
				// connection before the answer could be read.
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if line, _ := r.ReadString('\n'); strings.Contains(line, "-32004") {
					note("refused at connect (-32004, closed)")
				} else {
					note("refused at connect (closed)")
				}
			}
			if _, err := c.Write(head); err != nil {
				refused()
				return
			}
			for n := 0; n < msgSize; n += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					refused()
					return
				}
			}
			if _, err := c.Write(tail); err != nil {
				refused()
				return
			}
			line, err := r.ReadString('\n')
			switch {
			case err != nil:
				note("no reply: " + err.Error())
			case strings.Contains(line, `"error"`):
				m := code.FindStringSubmatch(line)
				if len(m) < 2 {
					m = []string{"", "?"}
				}
				note("error " + m[1])
			default:
				note("result")
			}
		}()
	}
	wg.Wait()
	// Recovery: the guard returns to normal on its own and a healthy client is served.
	recovered := time.Now().Add(30 * time.Second)
	for !lim.AdmitConn() && time.Now().Before(recovered) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	mon.Wait()
	for k, n := range outcomes {
		t.Logf("outcome: %d × %s", n, k)
		// Every client either is refused with a clear error or gets an answer: the
		// overloaded error (-32004, for a line dropped while refused or a request refused
		// by admission), or the tool's answer (a 10 MiB echo is over max_response_size).
		if !strings.HasPrefix(k, "refused at connect") && k != "error -32004" && k != "result" && !strings.HasPrefix(k, "error -32") {
			t.Errorf("unexpected outcome %q for %d clients", k, n)
		}
	}
	t.Logf("peak RSS %d MiB (limit %d MiB + slack %d MiB); guard tripped %d times; heap now %d MiB",
		peak.Load()>>20, limit>>20, slack>>20, trips.Load(), lim.MemoryGuard().InUse()>>20)
	if !lim.AdmitConn() {
		t.Fatal("memory guard did not return to normal within 30 s after the flood")
	}
	c := dial(t, addr)
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("healthy client after the flood: %s", m.Error.Message)
	}
	if peak.Load() > limit+slack {
		t.Fatalf("peak RSS %d MiB exceeds the %d MiB limit plus %d MiB slack", peak.Load()>>20, limit>>20, slack>>20)
	}
	if trips.Load() == 0 {
		t.Fatal("the flood never tripped the memory guard: it did not test it")
	}
}
