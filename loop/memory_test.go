package loop

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIdleMemory measures heap per idle connection with 5,000 connections
// that each did one round trip and then went idle (hibernated). It logs the
// figure; it asserts only a loose ceiling so a regression by an order of
// magnitude fails. Run with -v to see the numbers (server + client side are
// in one process; the client's net.Conn cost is measured separately and
// subtracted).
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 sockets")
	}
	const n = 5000
	h := &echoHandler{}
	s := startServer(t, Config{Handler: h, HibernateAfter: 50 * time.Millisecond, BufferSize: bsFromEnv()})

	// Client-side cost alone: dial a plain Go listener that reads nothing.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var accepted []net.Conn
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for i := 0; i < n; i++ {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			accepted = append(accepted, c)
		}
	}()
	base := heapInUse()
	var clientOnly []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", plain.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clientOnly = append(clientOnly, c)
	}
	<-acceptDone
	clientAndGoServer := heapInUse() - base
	for _, c := range accepted {
		c.Close()
	}
	for _, c := range clientOnly {
		c.Close()
	}
	accepted, clientOnly = nil, nil
	time.Sleep(50 * time.Millisecond)

	base = heapInUse()
	rssBase := rss()
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "{\"id\":%d}\n", i)
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "hibernation", func() bool { return s.Stats().Hibernated == n })
	total := heapInUse() - base
	if p := os.Getenv("LOOP_HEAPPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	rssTotal := rss() - rssBase
	// Our client conns cost about half of clientAndGoServer (a Go net.Conn
	// on each side); subtract one side.
	perConn := (float64(total) - float64(clientAndGoServer)/2) / n
	t.Logf("heap per idle connection (server side, hibernated): %.0f B; total with client %.0f B; Go net.Conn pair %.0f B; RSS delta per conn (both sides) %.0f B",
		perConn, float64(total)/n, float64(clientAndGoServer)/n, float64(rssTotal)/n)
	if perConn > 16<<10 {
		t.Errorf("idle connection costs %.0f B of heap", perConn)
	}
	for _, c := range conns {
		c.Close()
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	for i := 0; i < 2; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rss returns the resident set size in bytes from /proc (0 if unavailable).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func bsFromEnv() int { n, _ := strconv.Atoi(os.Getenv("LOOP_BS")); return n }
