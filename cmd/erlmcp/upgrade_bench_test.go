package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUpgradeUnderBench runs the real load generator (erlmcp bench) over TCP ping-pong and
// stateless Streamable HTTP through `erlmcp upgrade`: not one request may fail. Requests the
// old process left unanswered when it closed a connection were never executed (its drain
// answers everything it reads), so bench re-sends them (--retry-unanswered) and they are
// reported apart from errors.
func TestUpgradeUnderBench(t *testing.T) {
	p := startDaemonProc(t, "-set", "rate_limiter.enabled=false")
	addr := p.addr("tcp")
	type result struct {
		Requests uint64            `json:"requests"`
		Errors   uint64            `json:"errors"`
		ByKind   map[string]uint64 `json:"errorsByKind"`
		Retried  uint64            `json:"retried"`
	}
	runs := map[string][]string{
		"tcp":  {"--transport", "tcp", "--addr", addr, "--conns", "8"},
		"http": {"--transport", "http", "--stateless", "--url", "http://" + addr + "/mcp", "--conns", "4"},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]result{}
	for name, args := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(binary, append([]string{"bench", "--mode", "pingpong", "--duration", "4s", "--json", "--quiet", "--retry-unanswered"}, args...)...)
			out, err := cmd.Output()
			var r result
			if err != nil || json.Unmarshal(out, &r) != nil {
				t.Errorf("bench %s: %v: %s", name, err, out)
				return
			}
			mu.Lock()
			results[name] = r
			mu.Unlock()
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	out, err := p.admin("upgrade")
	if err != nil || !strings.Contains(out, "old process stopped") {
		t.Fatalf("upgrade: %v: %s", err, out)
	}
	wg.Wait()
	for name, r := range results {
		t.Logf("%s: %d requests, %d errors %v, %d re-sent after the old process closed", name, r.Requests, r.Errors, r.ByKind, r.Retried)
		if r.Errors != 0 {
			t.Errorf("%s: %d failed requests across the upgrade: %v", name, r.Errors, r.ByKind)
		}
		if r.Requests < 1000 {
			t.Errorf("%s: only %d requests: the load did not run through the upgrade", name, r.Requests)
		}
	}
	if len(results) != 2 {
		t.Fatalf("bench results: %v", results)
	}
	if out, err := p.admin("ping"); err != nil || !strings.Contains(out, "pong") {
		t.Fatalf("new process does not answer ping: %v %s", err, out)
	}
}
