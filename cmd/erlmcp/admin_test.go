package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server"
)

// daemonProc is a real `erlmcp start` on loopback :0 ports with its own control socket.
type daemonProc struct {
	t    *testing.T
	sock string
	log  string
	cmd  *exec.Cmd
	args []string // -set flags every admin command needs
}

func startDaemonProc(t *testing.T, extra ...string) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	p := &daemonProc{t: t, sock: filepath.Join(dir, "ctl.sock"), log: filepath.Join(dir, "erlmcp.log")}
	p.args = []string{"-set", "server.control_socket=" + p.sock}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"start", "-set", "transports.tcp.addr=127.0.0.1:0", "-set", "observability.metrics.addr=127.0.0.1:0"}, p.args...)
	p.cmd = exec.Command(binary, append(args, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := p.admin("ping"); err == nil && strings.TrimSpace(out) == "pong" {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(p.log)
	t.Fatalf("daemon did not answer ping:\n%s", b)
	return nil
}

// kill ends the daemon and any process an upgrade started (found by its status pid).
func (p *daemonProc) kill() {
	if out, err := p.admin("status", "-json"); err == nil {
		if m := regexp.MustCompile(`"pid": (\d+)`).FindStringSubmatch(out); m != nil {
			pid, _ := strconv.Atoi(m[1])
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func (p *daemonProc) admin(args ...string) (string, error) {
	cmd := exec.Command(binary, append(args, p.args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addr returns the bound address of a transport from the daemon's log.
func (p *daemonProc) addr(transport string) string {
	p.t.Helper()
	b, _ := os.ReadFile(p.log)
	m := regexp.MustCompile(`transport=` + transport + ` addr=(\S+)`).FindSubmatch(b)
	if m == nil {
		p.t.Fatalf("no %s address in the log:\n%s", transport, b)
	}
	return string(m[1])
}

func TestAdminCommands(t *testing.T) {
	p := startDaemonProc(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ping"}, "pong"},
		{[]string{"status"}, "memory total"},
		{[]string{"status", "-json"}, `"goroutines"`},
		{[]string{"versions"}, "running server: erlmcp 9.9.9-test"},
		{[]string{"reopen_log"}, "nothing to reopen"},
		{[]string{"reload"}, "no changes"},
	} {
		out, err := p.admin(c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Fatalf("erlmcp %v: err=%v, want %q in:\n%s", c.args, err, c.want, out)
		}
	}
	out, err := p.admin("stop")
	if err != nil || !strings.Contains(out, "old process stopped") {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after stop: %v", err)
	}
	out, err = p.admin("ping")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "no server running (control socket "+p.sock+": connect:") {
		t.Fatalf("ping with no server: %v\n%s", err, out)
	}
	if out, err = p.admin("stop"); err != nil || !strings.Contains(out, "nothing to stop") {
		t.Fatalf("stop with no server: %v\n%s", err, out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("server:\n  page_size: 10\n"), 0o600)
	os.WriteFile(bad, []byte("transports:\n  tcp:\n    write_timeout_ms: -1\n"), 0o600)
	if out, err := exec.Command(binary, "config", "check", good).CombinedOutput(); err != nil {
		t.Fatalf("good config: %v %s", err, out)
	}
	out, err := exec.Command(binary, "config", "check", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "transports.tcp.write_timeout_ms") {
		t.Fatalf("bad config: %v %s", err, out)
	}
}

// TestConfigDefaultsEveryKey: the generated etc/erlmcp.yaml names every key, and loads.
func TestConfigDefaultsEveryKey(t *testing.T) {
	out, err := exec.Command(binary, "config", "defaults", "-src", "../../server").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("# Name is serverInfo.name.")) {
		t.Fatalf("no doc comments:\n%s", out)
	}
	f := filepath.Join(t.TempDir(), "erlmcp.yaml")
	os.WriteFile(f, out, 0o600)
	if o, err := exec.Command(binary, "config", "check", f).CombinedOutput(); err != nil {
		t.Fatalf("generated file does not load: %v %s", err, o)
	}
	// Every dotted key of the defaults appears, at its depth.
	keys := flattenKeys(t)
	for _, k := range keys {
		parts := strings.Split(k, ".")
		leaf := strings.Repeat("  ", len(parts)-1) + parts[len(parts)-1] + ":"
		if !bytes.Contains(out, []byte("\n"+leaf)) && !bytes.HasPrefix(out, []byte(leaf)) {
			t.Errorf("key %s missing from config defaults", k)
		}
	}
	if len(keys) < 20 {
		t.Fatalf("only %d keys", len(keys))
	}
}

// TestUpgradeUnderLoad runs TCP ping-pong clients and stateless HTTP /mcp clients through
// `erlmcp upgrade` and asserts that no request fails. Clients do what a well-behaved client
// does when the server closes a connection: reconnect and resend a request that got no
// answer (HTTP: Go's transport does so for requests with an Idempotency-Key).
func TestUpgradeUnderLoad(t *testing.T) {
	p := startDaemonProc(t, "-set", "rate_limiter.enabled=false")
	addr := p.addr("tcp")
	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var fails []string
	fail := func(s string) {
		failed.Add(1)
		failMu.Lock()
		if len(fails) < 5 {
			fails = append(fails, s)
		}
		failMu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tcpClient(addr, i, stop, &ok, fail)
		}(i)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := `{"jsonrpc":"2.0","id":%d,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(fmt.Sprintf(body, n)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
				req.Header.Set("Mcp-Method", "tools/list")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("%d-%d", i, n))
				resp, err := hc.Do(req)
				if err != nil {
					fail("http: " + err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"result"`)) {
					fail(fmt.Sprintf("http %d: %s", resp.StatusCode, b))
					continue
				}
				ok.Add(1)
			}
		}(i)
	}
	time.Sleep(700 * time.Millisecond)
	before := ok.Load()
	out, err := p.admin("upgrade")
	if err != nil || !strings.Contains(out, "old process stopped") {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	after := ok.Load()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("old process exit: %v", err)
	}
	out, err = p.admin("status", "-json")
	if err != nil || strings.Contains(out, fmt.Sprintf(`"pid": %d,`, p.cmd.Process.Pid)) {
		t.Fatalf("status after upgrade: %v\n%s", err, out)
	}
	t.Logf("requests: %d ok (%d before the upgrade, %d during it, %d after), %d failed", ok.Load(), before, after-before, ok.Load()-after, failed.Load())
	if failed.Load() != 0 || after <= before || ok.Load() == after {
		t.Fatalf("%d failed requests across the upgrade (ok before %d, at end of upgrade %d, total %d): %v", failed.Load(), before, after, ok.Load(), fails)
	}

	// A new binary that cannot start leaves the serving process alone.
	broken := filepath.Join(t.TempDir(), "broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'erlmcp: transports.tcp: simulated failure' >&2\nexit 1\n"), 0o755)
	out, err = p.admin("upgrade", "-binary", broken)
	if err == nil || !strings.Contains(out, "upgrade failed") || !strings.Contains(out, "keeps serving") {
		t.Fatalf("broken upgrade: %v\n%s", err, out)
	}
	if out, err := p.admin("ping"); err != nil || strings.TrimSpace(out) != "pong" {
		t.Fatalf("ping after a failed upgrade: %v %s", err, out)
	}
	if out, err := p.admin("stop"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
}

// tcpClient does newline JSON-RPC ping-pong on one connection, reconnecting when the server
// closes it and resending the request that got no answer.
func tcpClient(addr string, id int, stop <-chan struct{}, ok *atomic.Int64, fail func(string)) {
	var c net.Conn
	var r *bufio.Reader
	for n := 0; ; n++ {
		select {
		case <-stop:
			if c != nil {
				c.Close()
			}
			return
		default:
		}
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", n)
		var line string
		for attempt := 0; ; attempt++ {
			if attempt == 20 {
				fail(fmt.Sprintf("tcp client %d: request %d: no answer after %d reconnects", id, n, attempt))
				return
			}
			if c == nil {
				var err error
				if c, err = net.Dial("tcp", addr); err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				r = bufio.NewReader(c)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Write([]byte(msg))
			if err == nil {
				line, err = r.ReadString('\n')
			}
			if err != nil { // closed by the server (drain): reconnect, resend
				c.Close()
				c = nil
				continue
			}
			break
		}
		if !strings.Contains(line, `"result"`) || !strings.Contains(line, fmt.Sprintf(`"id":%d`, n)) {
			fail(fmt.Sprintf("tcp client %d: %s", id, line))
			continue
		}
		ok.Add(1)
	}
}

func flattenKeys(t *testing.T) []string {
	t.Helper()
	f, err := server.FlattenSettings(server.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	return keys
}
