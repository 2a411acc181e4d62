package main

// The shipped load-balancer configs (deploy/haproxy, deploy/nginx) with real haproxy and nginx
// in front of cluster-mode nodes: validity, routing, draining on erlmcp stop and upgrade.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped load-balancer configs are valid as shipped and with the variables the
// tests and deployments set.
func TestLoadBalancerConfigsValid(t *testing.T) {
	needCommands(t, "haproxy")
	for _, env := range [][]string{
		nil,
		{"ERLMCP_LB_SERVER2=", "ERLMCP_LB_SERVER3=", "ERLMCP_LB_STICKY=off"},
		{"ERLMCP_LB_SERVER4=127.0.0.1:9", "ERLMCP_LB_SERVER5=127.0.0.1:10", "ERLMCP_LB_SERVER6=127.0.0.1:11", "ERLMCP_LB_BIND=127.0.0.1:1"},
	} {
		cmd := exec.Command(program("haproxy"), "-c", "-f", haproxyCfg)
		cmd.Env = append(cmd.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Configuration file is valid") {
			t.Errorf("haproxy -c with %v: %v\n%s", env, err, out)
		}
	}
	needCommands(t, "nginx")
	dir := t.TempDir()
	conf := nginxMainConf(t, dir, "../../deploy/nginx/erlmcp.conf")
	if out, err := exec.Command(program("nginx"), "-t", "-p", dir, "-c", conf, "-e", "stderr").CombinedOutput(); err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

// nginxMainConf writes a minimal nginx.conf in dir (pid, temp paths and logs inside it)
// that includes the snippet, and returns its path.
func nginxMainConf(t *testing.T, dir, snippet string) string {
	t.Helper()
	abs, err := filepath.Abs(snippet)
	if err != nil {
		t.Fatal(err)
	}
	conf := dir + "/nginx.conf"
	body := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log stderr;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  include %[2]s;
}
`, dir, abs)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// Draining: `erlmcp upgrade` hands the listening socket to the new process, so haproxy sees
// no gap and the session, unknown to the new process, is re-hydrated from Redis under the
// same node; `erlmcp stop` closes the listener and turns /ready false, haproxy retries the
// next request on the other node (which re-hydrates the session) and marks the node DOWN.
func TestClusterUpgradeAndStopBehindHAProxy(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"})
	lb := startHAProxy(t, hostports(nodes))

	s, created := newSession(t, lb.url)
	xi := indexOf(t, created, nodes)
	s.mustCall("logging/setLevel", map[string]any{"level": "debug"})
	waitRedisSession(t, r, testPrefix(t), s.id, "")

	out, err := nodes[xi].admin("upgrade")
	if err != nil || !strings.Contains(out, "old process stopped") {
		t.Fatalf("upgrade of %s: %v: %s", nodes[xi].name, err, out)
	}
	for i := 0; i < 3; i++ {
		a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "upgraded"}})
		if a.Backend != created || toolText(a) != "upgraded" {
			t.Fatalf("after the upgrade of %s: answer from %s: %s", created, a.Backend, a.Body)
		}
	}
	if st, _ := lb.serverStatus(); !strings.HasPrefix(st[created], "UP") {
		t.Fatalf("haproxy status of %s after the upgrade: %v (an upgrade must not take the node out)", created, st)
	}
	if cs := nodeStatus(t, nodes[xi]); cs.Node != nodes[xi].name {
		t.Fatalf("the upgraded process is node %q, want %q", cs.Node, nodes[xi].name)
	}

	out, err = nodes[xi].admin("stop")
	if err != nil {
		t.Fatalf("stop %s: %v: %s", nodes[xi].name, err, out)
	}
	a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "moved"}})
	if a.Backend == created || toolText(a) != "moved" {
		t.Fatalf("after stopping %s: answer from %s: %s", created, a.Backend, a.Body)
	}
	lb.waitStatus(5*time.Second, func(st map[string]string) bool { return strings.HasPrefix(st[created], "DOWN") }, created+" DOWN after erlmcp stop")
}

// nginx (deploy/nginx/erlmcp.conf, addresses filled in): stateless requests spread over the
// nodes round-robin (the hash key is empty), and session-era requests hash on
// Mcp-Session-Id to one node — not always the one that created the session, which cluster
// mode covers by re-hydrating it there, from the very first request after initialize.
func TestNginxClusterRouting(t *testing.T) {
	needCommands(t, "nginx")
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b", "c"})
	dir := shortTempDir(t, "ngx")
	src, err := os.ReadFile("../../deploy/nginx/erlmcp.conf")
	if err != nil {
		t.Fatal(err)
	}
	var ng *bgProc
	var url string
	for attempt := 0; ; attempt++ {
		port := freeLoopbackPort(t)
		conf := strings.NewReplacer("127.0.0.1:8081", nodes[0].hostport(), "127.0.0.1:8082", nodes[1].hostport(),
			"127.0.0.1:8083", nodes[2].hostport(), "listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port)).Replace(string(src))
		if err := os.WriteFile(dir+"/erlmcp.conf", []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out := &syncBuffer{}
		cmd := exec.Command(program("nginx"), "-p", dir, "-c", nginxMainConf(t, dir, dir+"/erlmcp.conf"), "-e", "stderr")
		cmd.Stdout, cmd.Stderr = out, out
		if ng, err = startBG(cmd); err != nil {
			t.Fatal(err)
		}
		url = fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
		up := false
		for i := 0; i < 200 && !ng.exited(); i++ {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
				c.Close()
				up = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if up {
			break
		}
		ng.stop(2 * time.Second)
		if attempt == 4 {
			t.Fatalf("nginx did not start:\n%s", out.String())
		}
	}
	t.Cleanup(func() { ng.stop(5 * time.Second) })

	seen := map[string]int{}
	for i := 0; i < 9; i++ {
		a := statelessCall(t, url, "tools/call", "echo", map[string]any{"name": "echo", "arguments": map[string]any{"text": "rr"}})
		if a.Status != 200 || toolText(a) != "rr" {
			t.Fatalf("stateless through nginx: %d %s", a.Status, a.Body)
		}
		seen[a.Header.Get("X-Erlmcp-Backend")]++
	}
	if len(seen) != 3 {
		t.Fatalf("9 stateless requests through nginx reached %d nodes, want 3 (round-robin): %v", len(seen), seen)
	}

	rehydrated := 0
	for i := 0; i < 12; i++ {
		s, created := newSession(t, url) // initialize, then notifications/initialized hashed
		var at string
		for j := 0; j < 3; j++ {
			a := s.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hashed"}})
			if at != "" && a.Header.Get("X-Erlmcp-Backend") != at {
				t.Fatalf("session %s answered by %s then %s: the hash does not stick", s.id, at, a.Header.Get("X-Erlmcp-Backend"))
			}
			at = a.Header.Get("X-Erlmcp-Backend")
		}
		if at != created {
			rehydrated++
		}
	}
	t.Logf("12 sessions through nginx: %d served by another node than the one that created them", rehydrated)
	if rehydrated == 0 {
		t.Fatalf("no session moved off its creating node: the test did not exercise re-hydration")
	}
}

// Draining under load: erlmcp bench runs through haproxy against two cluster nodes, stateless
// and session era, while one node is stopped (`erlmcp stop`) mid-run: not one request fails.
// Connections refused by the stopped node are retried on the other (retries + redispatch),
// requests it had read are answered by its drain, and its sessions move to the other node,
// which re-hydrates them from Redis.
func TestClusterStopUnderLoadBehindHAProxy(t *testing.T) {
	r := startRedis(t)
	nodes := startClusterNodes(t, r, []string{"a", "b"})
	lb := startHAProxy(t, hostports(nodes))
	via := []string{"--transport", "http", "--url", lb.url, "--conns", "8", "--warmup", "0s"}
	runs := map[string][]string{
		"stateless": append([]string{"--stateless"}, via...),
		"session":   via,
	}
	benchThrough(t, "while a node was stopped behind haproxy", runs, func() {
		if out, err := nodes[0].admin("stop"); err != nil {
			t.Fatalf("stop a: %v: %s", err, out)
		}
	})
	if v, _ := metricValue(t, nodes[1].metrics, "erlmcp_cluster_rehydrations_total"); v < 1 {
		t.Errorf("no session moved to b (erlmcp_cluster_rehydrations_total %v): did the stop happen mid-run?", v)
	}
}

// The stateless era behind a plain round-robin load balancer with no shared state (issue 8,
// item 1): three nodes with cluster mode OFF and no Redis, only the same cluster.state_key
// (a file: secret), behind haproxy with stickiness off. Plain calls spread over every node, and
// an input-required round trip (requestState) started on one node completes on another. A node
// without the key refuses that state: the shared key is what makes it work.
func TestStatelessFleetWithoutRedis(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "state.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*clusterNode
	for i := 0; i < 3; i++ {
		nodes = append(nodes, startNode(t, "--profile", "conformance", "-set", "rate_limiter.enabled=false",
			"-set", "cluster.state_key=file:"+keyFile))
	}
	stranger := startNode(t, "--profile", "conformance", "-set", "rate_limiter.enabled=false")
	lb := startHAProxy(t, hostports(nodes), "ERLMCP_LB_STICKY=off")

	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		a := statelessCall(t, lb.url, "tools/call", "test_simple_text", map[string]any{"name": "test_simple_text"})
		if a.Status != 200 || toolText(a) == "" {
			t.Fatalf("stateless call through haproxy: %d %s", a.Status, a.Body)
		}
		seen[a.Backend] = true
	}
	if len(seen) != 3 {
		t.Fatalf("6 stateless calls reached %d nodes, want 3: %v", len(seen), seen)
	}

	const tool = "test_input_required_result_request_state"
	confirm := map[string]any{"confirm": map[string]any{"action": "accept", "content": map[string]any{"ok": true}}}
	start := func(url string) string {
		t.Helper()
		a := statelessCall(t, url, "tools/call", tool, map[string]any{"name": tool})
		var r struct {
			ResultType   string `json:"resultType"`
			RequestState string `json:"requestState"`
		}
		if a.Reply != nil {
			json.Unmarshal(a.Reply.Result, &r)
		}
		if a.Status != 200 || r.ResultType != "input_required" || r.RequestState == "" {
			t.Fatalf("%s at %s: want input_required with a requestState: %d %s", tool, url, a.Status, a.Body)
		}
		return r.RequestState
	}
	finish := func(url, state string) rpcAnswer {
		t.Helper()
		return statelessCall(t, url, "tools/call", tool, map[string]any{"name": tool, "requestState": state, "inputResponses": confirm})
	}
	for i, from := range nodes {
		state := start(from.url)
		for j, to := range nodes {
			if a := finish(to.url, state); a.Status != 200 || !strings.HasPrefix(toolText(a), "state-ok") {
				t.Fatalf("requestState from node %d completed on node %d: %d %s", i, j, a.Status, a.Body)
			}
		}
	}
	// Through haproxy (round-robin: the retry lands on another node than the first call).
	for i := 0; i < 3; i++ {
		if a := finish(lb.url, start(lb.url)); a.Status != 200 || !strings.HasPrefix(toolText(a), "state-ok") {
			t.Fatalf("input-required round trip through haproxy: %d %s", a.Status, a.Body)
		}
	}
	// The control: a node with its own random key refuses the fleet's state.
	if a := finish(stranger.url, start(nodes[0].url)); a.Status == 200 && a.Reply != nil && a.Reply.Error == nil {
		t.Fatalf("a node without the shared state_key accepted the fleet's requestState: %s", a.Body)
	}
}
