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
	runs := map[string][]string{
		"tcp":  {"--transport", "tcp", "--addr", addr, "--conns", "8", "--retry-unanswered"},
		"http": {"--transport", "http", "--stateless", "--url", "http://" + addr + "/mcp", "--conns", "4", "--retry-unanswered"},
	}
	benchThrough(t, "across the upgrade", runs, func() {
		out, err := p.admin("upgrade")
		if err != nil || !strings.Contains(out, "old process stopped") {
			t.Fatalf("upgrade: %v: %s", err, out)
		}
	})
	if out, err := p.admin("ping"); err != nil || !strings.Contains(out, "pong") {
		t.Fatalf("new process does not answer ping: %v %s", err, out)
	}
}

// benchResult is what the load tests read from `erlmcp bench --json`.
type benchResult struct {
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	ByKind   map[string]uint64 `json:"errorsByKind"`
	Retried  uint64            `json:"retried"`
}

// benchThrough runs `erlmcp bench --mode pingpong --duration 4s --json --quiet <args>` for
// every run at once, calls event 1.5 s in, and then requires of every run that not one
// request failed and that at least 1,000 were made (the load really ran through event,
// named by during in the messages).
func benchThrough(t *testing.T, during string, runs map[string][]string, event func()) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]benchResult{}
	for name, args := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(binary, append([]string{"bench", "--mode", "pingpong", "--duration", "4s", "--json", "--quiet"}, args...)...)
			out, err := cmd.Output()
			var r benchResult
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
	event()
	wg.Wait()
	for name, r := range results {
		t.Logf("%s: %d requests, %d errors %v, %d re-sent after a closed connection", name, r.Requests, r.Errors, r.ByKind, r.Retried)
		if r.Errors != 0 {
			t.Errorf("%s: %d failed requests %s: %v", name, r.Errors, during, r.ByKind)
		}
		if r.Requests < 1000 {
			t.Errorf("%s: only %d requests: the load did not run %s", name, r.Requests, during)
		}
	}
	if len(results) != len(runs) {
		t.Fatalf("bench results: %v", results)
	}
}
