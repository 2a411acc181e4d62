package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startControlDaemon starts a daemon on loopback :0 ports with its control socket in a
// temp dir and the given config file.
func startControlDaemon(t *testing.T, cfgPath string) (*Daemon, string) {
	t.Helper()
	st, err := LoadSettings(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	sets := []string{"transports.tcp.addr=127.0.0.1:0", "observability.metrics.addr=127.0.0.1:0", "server.control_socket=" + sock}
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		if err := st.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDaemon(st, BuildInfo{Version: "1.2.3-test"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	d.SetConfigSource(cfgPath, sets)
	if err := d.StartControl(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.drain() })
	return d, sock
}

func controlOK(t *testing.T, sock, cmd string, out any) {
	t.Helper()
	resp, c, err := ControlCall(sock, ControlRequest{Cmd: cmd}, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	c.Close()
	if !resp.OK {
		t.Fatalf("%s: %s", cmd, resp.Error)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, resp.Result)
		}
	}
}

func TestControlSocket(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "erlmcp.yaml")
	os.WriteFile(cfg, []byte("logging:\n  level: info\n"), 0o600)
	d, sock := startControlDaemon(t, cfg)

	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode: %v %v", fi.Mode(), err)
	}
	var pong string
	controlOK(t, sock, "ping", &pong)
	if pong != "pong" {
		t.Fatalf("ping = %q", pong)
	}
	var st StatusInfo
	controlOK(t, sock, "status", &st)
	if st.PID != os.Getpid() || st.Memory["total"] == 0 || st.Goroutines == 0 || st.Version != "1.2.3-test" {
		t.Fatalf("status: %+v", st)
	}
	if _, ok := st.Connections["tcp"]; !ok {
		t.Fatalf("status has no tcp connections: %+v", st.Connections)
	}
	var v VersionsInfo
	controlOK(t, sock, "versions", &v)
	if v.Version != "1.2.3-test" || len(v.Protocols) == 0 || len(v.Features) == 0 {
		t.Fatalf("versions: %+v", v)
	}
	controlOK(t, sock, "reopen_log", nil)

	// A second daemon on the same socket is refused while the first answers.
	if _, err := listenControl(d, sock, false); err == nil || !strings.Contains(err.Error(), "another erlmcp") {
		t.Fatalf("second control socket: %v", err)
	}

	// reload: level and disabled tools live, page_size needs a restart.
	os.WriteFile(cfg, []byte("logging:\n  level: debug\nserver:\n  page_size: 7\n  disabled_tools: [echo]\n"), 0o600)
	var rep ReloadReport
	controlOK(t, sock, "reload", &rep)
	keys := func(cs []KeyChange) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Key)
		}
		return strings.Join(s, ",")
	}
	if keys(rep.Applied) != "logging.level,server.disabled_tools" || keys(rep.Restart) != "server.page_size" {
		t.Fatalf("reload: applied %s, restart %s", keys(rep.Applied), keys(rep.Restart))
	}
	if _, ok := d.srv.tools.get("echo"); ok {
		t.Fatal("echo still registered after disabling it")
	}
	os.WriteFile(cfg, []byte("logging:\n  level: debug\nserver:\n  page_size: 7\n"), 0o600)
	controlOK(t, sock, "reload", &rep)
	if _, ok := d.srv.tools.get("echo"); !ok || keys(rep.Applied) != "server.disabled_tools" {
		t.Fatalf("echo not restored: applied %s", keys(rep.Applied))
	}
	// A bad file changes nothing and names the key.
	os.WriteFile(cfg, []byte("server:\n  page_size: 0\n"), 0o600)
	resp, c, err := ControlCall(sock, ControlRequest{Cmd: "reload"}, 5*time.Second)
	if err != nil || resp.OK || !strings.Contains(resp.Error, "server.page_size") {
		t.Fatalf("bad reload: %v %+v", err, resp)
	}
	c.Close()

	// stop: the answer, then EOF once drained; the socket file is gone.
	resp, c, err = ControlCall(sock, ControlRequest{Cmd: "stop"}, 5*time.Second)
	if err != nil || !resp.OK {
		t.Fatalf("stop: %v %+v", err, resp)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("stop: connection still open")
	}
	c.Close()
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestFlattenSettingsEveryKey(t *testing.T) {
	f, err := FlattenSettings(DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server.control_socket", "server.disabled_tools", "transports.tcp.addr", "logging.level"} {
		if _, ok := f[k]; !ok {
			t.Fatalf("missing %s in %v", k, f)
		}
	}
}
