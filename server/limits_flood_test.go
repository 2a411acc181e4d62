package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/erlmcp/erlmcp-go/loop"
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
// the server must serve a healthy client afterwards on its own. It is bounded (every
// client has deadlines, the whole flood at most 60 s) and runs only with
// ERLMCP_FLOOD_TEST=1, alone (-run TestMemoryGuardFlood), because it sets the process-wide
// Go memory limit and measures the RSS of the whole test binary.
func TestMemoryGuardFlood(t *testing.T) {
	if os.Getenv("ERLMCP_FLOOD_TEST") != "1" {
		t.Skip("set ERLMCP_FLOOD_TEST=1 and run alone: go test -run TestMemoryGuardFlood ./server/")
	}
	const (
		limit   = 512 << 20
		slack   = 128 << 20
		clients = 200
		msgSize = 10 << 20
	)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	lim, err := NewLimits(LimitsConfig{MemoryGuard: &limits.MemoryGuardConfig{LimitBytes: limit, SampleInterval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	var trips atomic.Int64
	lim.MemoryGuard().OnChange(func(_, n limits.MemoryState) {
		if n == limits.MemoryOverloaded {
			trips.Add(1)
		}
	})
	scfg := Config{MaxResponseBytes: 1 << 20}
	lim.Install(&scfg)
	s := newDemoServer(t, scfg)
	addr := startTCP(t, s, func(c *loop.Config) { c.MaxFrameBytes = msgSize + 4096 })

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
	var outcomes sync.Map
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				outcomes.Store(fmt.Sprint("dial: ", err), true)
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			if _, err := c.Write(head); err != nil {
				outcomes.Store("refused at connect", true)
				return
			}
			for n := 0; n < msgSize; n += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					outcomes.Store("connection closed while sending", true)
					return
				}
			}
			c.Write(tail)
			line, err := bufio.NewReader(c).ReadString('\n')
			switch {
			case err != nil:
				outcomes.Store("no reply: "+err.Error(), true)
			case strings.Contains(line, "-32004"):
				outcomes.Store("overloaded (-32004)", true)
			default:
				outcomes.Store("reply: "+snippet(line), true)
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
	outcomes.Range(func(k, _ any) bool { t.Logf("outcome: %v", k); return true })
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
	_ = context.Background
}
