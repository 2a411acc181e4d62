package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binary string

// TestMain builds the real erlmcp binary once; the tests run it as operators do.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "erlmcp-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "erlmcp")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=9.9.9-test", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building erlmcp: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running `erlmcp start`.
type daemon struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
}

var listenRe = regexp.MustCompile(`msg=listening transport=tcp addr=(\S+)`)

// startDaemon runs `erlmcp start` on a free loopback port and waits for it to listen.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	base := []string{"start", "-transports.tcp.addr", "127.0.0.1:0", "-set", "observability.metrics.addr=127.0.0.1:0",
		"-set", "server.control_socket=" + filepath.Join(t.TempDir(), "erlmcp.sock")}
	cmd := exec.Command(binary, append(base, args...)...)
	pr, pw, _ := os.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			d.stderr.WriteString(line + "\n")
			if m := listenRe.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case d.addr = <-found:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("daemon did not report listening")
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("daemon did not stop on SIGTERM")
		}
	})
	return d
}

// The seed's section 7.1 lines, verbatim but for the port, through nc.
func TestSeedSmokeLinesWithNetcat(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		t.Fatal("nc is required (apt-get install netcat-openbsd; .ci/run installs it)")
	}
	d := startDaemon(t)
	host, port, _ := strings.Cut(d.addr, ":")
	run := func(line string) map[string]any {
		t.Helper()
		// -N: shut down the socket's write side at EOF of stdin (openbsd nc), so nc exits
		// once the server has answered and closed.
		cmd := exec.Command("bash", "-c", fmt.Sprintf("echo '%s' | timeout 10 nc -N %s %s", line, host, port))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("nc: %v (output %q)", err, out)
		}
		var m map[string]any
		if err := json.Unmarshal(bytes.TrimSpace(out), &m); err != nil {
			t.Fatalf("reply to %s is not one JSON object: %q", line, out)
		}
		return m
	}
	init := run(`{"jsonrpc":"2.0","method":"initialize","params":{},"id":1}`)
	res, _ := init["result"].(map[string]any)
	if res == nil || res["capabilities"] == nil || res["protocolVersion"] != "2025-11-25" {
		t.Fatalf("initialize: %v", init)
	}
	if info := res["serverInfo"].(map[string]any); info["name"] != "erlmcp" || info["version"] != "9.9.9-test" {
		t.Fatalf("serverInfo: %v", info)
	}
	res2 := run(`{"jsonrpc":"2.0","method":"resources/list","params":{},"id":3}`)
	if rs := res2["result"].(map[string]any)["resources"].([]any); len(rs) == 0 {
		t.Fatalf("resources/list: %v", res2)
	}
	tools := run(`{"jsonrpc":"2.0","method":"tools/list","params":{},"id":2}`)
	if ts := tools["result"].(map[string]any)["tools"].([]any); len(ts) < 2 {
		t.Fatalf("tools/list: %v", tools)
	}
	bad := run(`{"jsonrpc":"2.0":"method":"tools/list","params":{},"id":2}`)
	e, _ := bad["error"].(map[string]any)
	if e == nil || e["code"] != float64(-32700) || bad["id"] != nil {
		t.Fatalf("malformed JSON: %v", bad)
	}
}

// erlmcp stdio: stdout carries only MCP messages, logs go to stderr, EOF ends the session
// after the answers in flight are written.
func TestStdioThroughBinary(t *testing.T) {
	cmd := exec.Command(binary, "stdio")
	cmd.Stdin = strings.NewReader(strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":200}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"over stdio"}}}`,
		`not json`,
	}, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("erlmcp stdio: %v\nstderr: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	ids := []string{}
	for _, l := range lines {
		var m struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   *struct{ Code int }
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.JSONRPC != "2.0" {
			t.Fatalf("stdout line is not a JSON-RPC message: %q", l)
		}
		ids = append(ids, string(m.ID))
		if string(m.ID) == "3" && !strings.Contains(string(m.Result), "over stdio") {
			t.Fatalf("echo over stdio: %s", l)
		}
		if string(m.ID) == "null" && (m.Error == nil || m.Error.Code != -32700) {
			t.Fatalf("bad line answer: %s", l)
		}
	}
	if got := strings.Join(ids, ","); got != "1,3,null,2" {
		t.Fatalf("stdout ids = %s, want 1,3,null,2 (slow tool last)\n%s", got, stdout.String())
	}
}

func TestVersionsCommand(t *testing.T) {
	out, err := exec.Command(binary, "versions", "-json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version      string
		Go           string
		Dependencies []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("versions -json: %v: %s", err, out)
	}
	deps := map[string]bool{}
	for _, d := range v.Dependencies {
		deps[d.Path] = true
	}
	if v.Version != "9.9.9-test" || !strings.HasPrefix(v.Go, "go1.") || !deps["github.com/cloudwego/netpoll"] || !deps["github.com/bytedance/sonic"] {
		t.Fatalf("versions: %s", out)
	}
}

func TestBadConfigRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("server:\n  page_size: 0\n"), 0o600)
	out, err := exec.Command(binary, "start", "-config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "server.page_size") {
		t.Fatalf("bad config: err=%v out=%s", err, out)
	}
	os.WriteFile(cfg, []byte("server:\n  nope: 1\n"), 0o600)
	out, err = exec.Command(binary, "start", "-config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nope") {
		t.Fatalf("unknown key: err=%v out=%s", err, out)
	}
}
