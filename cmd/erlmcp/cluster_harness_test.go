package main

// Process management for the cluster tests (cluster_test.go): a real redis-server on a unix
// socket, erlmcp nodes in cluster mode, and a real haproxy running the shipped
// deploy/haproxy/haproxy.cfg. Nothing here uses a fixed port or a system service.

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server/cluster/redistest"
)

// needCommands fails the test when a program the cluster tests run is missing: CI installs
// them (.ci/run), so a missing one is a broken machine, not a reason to skip. haproxy and
// nginx live in /usr/sbin, which a non-root PATH often lacks: it is searched too.
func needCommands(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if program(n) == "" {
			t.Fatalf("%s is required by the cluster tests (apt-get install %s; .ci/run installs it)", n, debianPackage[n])
		}
	}
}

// program returns the path of an installed program (PATH, then /usr/sbin and /sbin), or "".
func program(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	return ""
}

var debianPackage = map[string]string{"redis-server": "redis-server", "haproxy": "haproxy", "nginx": "nginx-light"}

// syncBuffer is a bytes.Buffer safe for a process's output goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shortTempDir is a temp directory with a short path: unix socket paths are limited to 108
// bytes, and t.TempDir() carries the test's name.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startRedis runs a redis-server of one test (server/cluster/redistest: unix socket only,
// no persistence, killed at cleanup; Kill is an outage, Restart brings it back empty).
func startRedis(t *testing.T) *redistest.Server { return redistest.Start(t) }

// bgProc is a child process with one goroutine reaping it, so that its exit can be seen
// (a zombie still answers signal 0) and it is waited for exactly once.
type bgProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startBG(cmd *exec.Cmd) (*bgProc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &bgProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// exited reports whether the process has ended.
func (p *bgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills; it returns once the process is reaped.
func (p *bgProc) stop(grace time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// clusterNode is one erlmcp node in cluster mode.
type clusterNode struct {
	*daemonProc
	name string
	// url is the node's own /mcp endpoint (bypassing the load balancer).
	url string
	// base is http://host:port of the node (health, ready).
	base string
	// metrics is the node's metrics endpoint.
	metrics string
	stopped bool
}

// clusterArgs are the -set flags of a node in cluster mode against r, under prefix.
func clusterArgs(r *redistest.Server, name, prefix string) []string {
	return []string{
		"-set", "cluster.enabled=true",
		"-set", "cluster.redis_url=" + r.URL(),
		"-set", "cluster.node=" + name,
		"-set", "cluster.key_prefix=" + prefix,
		"-set", "rate_limiter.enabled=false",
	}
}

// testPrefix is a Redis key prefix unique to this test run and test.
func testPrefix(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("erlmcp-test-%d-%s:", os.Getpid(), name)
}

// startClusterNodes starts one erlmcp node per name in cluster mode against r (all under
// one key prefix), with extra flags for each.
func startClusterNodes(t *testing.T, r *redistest.Server, names []string, extra ...string) []*clusterNode {
	t.Helper()
	prefix := testPrefix(t)
	nodes := make([]*clusterNode, len(names))
	for i, name := range names {
		nodes[i] = startNode(t, append(clusterArgs(r, name, prefix), extra...)...)
		nodes[i].name = name
	}
	return nodes
}

// startNode starts one erlmcp node with args (any mode) and reads back its addresses.
func startNode(t *testing.T, args ...string) *clusterNode {
	t.Helper()
	p := startDaemonProc(t, args...)
	n := &clusterNode{daemonProc: p}
	addr := p.addr("tcp")
	n.base = "http://" + addr
	n.url = n.base + "/mcp"
	n.metrics = "http://" + p.addr("metrics") + "/metrics"
	return n
}

// hostport is the node's main address (host:port), as a load balancer names it.
func (n *clusterNode) hostport() string { return strings.TrimPrefix(n.base, "http://") }

// crash kills the node with SIGKILL: no drain, no goodbye to Redis.
func (n *clusterNode) crash() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
	n.stopped = true
}

// logText is the node's log so far.
func (n *clusterNode) logText() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// freeLoopbackPort returns a port the kernel just handed out on 127.0.0.1 and released.
// Another process may take it before the caller binds it: callers retry on a bind error.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// haproxyCfg is the shipped config, which the tests run as is.
const haproxyCfg = "../../deploy/haproxy/haproxy.cfg"

// haproxyProc is a haproxy in front of some nodes, running deploy/haproxy/haproxy.cfg.
type haproxyProc struct {
	t     *testing.T
	proc  *bgProc
	addr  string // 127.0.0.1:port of the frontend
	url   string // http://addr/mcp
	stats string // runtime API socket
	out   *syncBuffer
}

// startHAProxy runs haproxy with the shipped config in front of servers (host:port, at
// most 6), with extra environment (e.g. "ERLMCP_LB_STICKY=off"), and waits until every
// server is UP.
func startHAProxy(t *testing.T, servers []string, env ...string) *haproxyProc {
	t.Helper()
	needCommands(t, "haproxy")
	if len(servers) == 0 || len(servers) > 6 {
		t.Fatalf("haproxy.cfg takes 1 to 6 servers, got %d", len(servers))
	}
	dir := shortTempDir(t, "hap")
	h := &haproxyProc{t: t, stats: filepath.Join(dir, "stats.sock")}
	base := append(os.Environ(), "ERLMCP_LB_STATS_SOCKET="+h.stats, "ERLMCP_LB_CHECK_INTER=250ms")
	for i := 1; i <= 3; i++ { // 2 and 3 have defaults: empty leaves them out
		base = append(base, fmt.Sprintf("ERLMCP_LB_SERVER%d=", i))
	}
	for i, s := range servers {
		base = append(base, fmt.Sprintf("ERLMCP_LB_SERVER%d=%s", i+1, s))
	}
	base = append(base, env...)
	for attempt := 0; ; attempt++ {
		h.addr = fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
		h.url = "http://" + h.addr + "/mcp"
		h.out = &syncBuffer{}
		cmd := exec.Command(program("haproxy"), "-db", "-f", haproxyCfg)
		cmd.Env = append(base, "ERLMCP_LB_BIND="+h.addr)
		cmd.Stdout, cmd.Stderr = h.out, h.out
		var err error
		if h.proc, err = startBG(cmd); err != nil {
			t.Fatalf("haproxy: %v", err)
		}
		if h.waitListening() {
			break
		}
		h.proc.stop(2 * time.Second)
		if attempt == 4 || !strings.Contains(h.out.String(), "annot bind") {
			t.Fatalf("haproxy did not start:\n%s", h.out.String())
		}
	}
	t.Cleanup(func() {
		h.proc.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("haproxy log:\n%s", h.out.String())
		}
	})
	h.waitStatus(10*time.Second, func(st map[string]string) bool {
		for i := range servers {
			if !strings.HasPrefix(st[fmt.Sprintf("node%d", i+1)], "UP") {
				return false
			}
		}
		return true
	}, "every server UP")
	return h
}

// waitListening reports whether the frontend accepts connections within 10 s (false when
// haproxy exited first, e.g. on a port taken in between).
func (h *haproxyProc) waitListening() bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !h.proc.exited() {
		if c, err := net.DialTimeout("tcp", h.addr, 200*time.Millisecond); err == nil {
			c.Close()
			if _, err := os.Stat(h.stats); err == nil {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// runtime sends one command to haproxy's runtime API and returns its answer.
func (h *haproxyProc) runtime(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", h.stats, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(c)
	return b.String(), err
}

// serverStatus returns the status column of "show stat" (UP, DOWN, MAINT, "UP 1/2", ...)
// of each server of the erlmcp backend.
func (h *haproxyProc) serverStatus() (map[string]string, error) {
	out, err := h.runtime("show stat")
	if err != nil {
		return nil, err
	}
	rd := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("show stat: %v: %q", err, out)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	st := map[string]string{}
	for _, r := range recs[1:] {
		if len(r) > col["status"] && r[col["pxname"]] == "erlmcp_nodes" && r[col["svname"]] != "BACKEND" {
			st[r[col["svname"]]] = r[col["status"]]
		}
	}
	return st, nil
}

// waitStatus polls serverStatus until ok says so, failing the test after timeout.
func (h *haproxyProc) waitStatus(timeout time.Duration, ok func(map[string]string) bool, what string) {
	h.t.Helper()
	var st map[string]string
	var err error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, err = h.serverStatus(); err == nil && ok(st) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("haproxy: waited %v for %s: status %v (err %v)\n%s", timeout, what, st, err, h.out.String())
}

// serverName is haproxy's name of the i-th server (0-based) given to startHAProxy.
func serverName(i int) string { return "node" + strconv.Itoa(i+1) }
