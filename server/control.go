package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The control socket is how the admin CLI (`erlmcp ping|status|stop|reload|...`) talks to
// the running daemon: a unix socket, mode 0600 (only the daemon's user), one JSON object per
// line each way:
//
//	→ {"cmd":"status"}
//	← {"ok":true,"result":{...}}          or {"ok":false,"error":"why"}
//
// Commands: ping, versions, status, stop, reopen_log, reload, upgrade. After a stop or a
// successful upgrade the daemon drains and closes the connection when it has stopped, so
// the CLI can wait for the end of the drain by reading to EOF.

// ControlRequest is one line from the admin CLI.
type ControlRequest struct {
	Cmd string `json:"cmd"`
	// Upgrade holds the upgrade's options (cmd "upgrade").
	Upgrade *UpgradeRequest `json:"upgrade,omitempty"`
}

// ControlResponse is the daemon's one-line answer.
type ControlResponse struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// controlMaxLine bounds a request line: requests are a few dozen bytes.
const controlMaxLine = 64 << 10

// DefaultControlSocket is the control socket path when server.control_socket is empty:
// $XDG_RUNTIME_DIR/erlmcp.sock when XDG_RUNTIME_DIR is set, else
// /tmp/erlmcp-$UID/erlmcp.sock (the directory is made 0700).
func DefaultControlSocket() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "erlmcp.sock")
	}
	return filepath.Join(os.TempDir(), "erlmcp-"+strconv.Itoa(os.Getuid()), "erlmcp.sock")
}

// ControlSocketPath returns the control socket path of st.
func (st *Settings) ControlSocketPath() string {
	if st.Server.ControlSocket != "" {
		return st.Server.ControlSocket
	}
	return DefaultControlSocket()
}

// operations is the daemon's admin side: the control socket, reload and upgrade. It lives
// apart from daemon.go as observability and security do.
type operations struct {
	mu sync.Mutex
	// cfgPath and sets are where the settings came from, re-read by reload.
	cfgPath string
	sets    []string
	// live is the configuration as applied (the start settings plus live reloads).
	live *Settings
	// tcpLn is the TCP transport's listening socket, handed on at an upgrade.
	tcpLn net.Listener
	// disabled holds tools hidden by server.disabled_tools, to put back when re-enabled.
	disabled map[string]*toolEntry

	ctl       *controlServer
	upgrading atomic.Bool
}

// SetConfigSource records the config file and -set overrides ("key=value") the daemon was
// started with, so that `erlmcp reload` reads the same file with the same overrides.
func (d *Daemon) SetConfigSource(path string, sets []string) {
	d.ops.mu.Lock()
	defer d.ops.mu.Unlock()
	d.ops.cfgPath = path
	d.ops.sets = append([]string(nil), sets...)
}

type controlServer struct {
	d    *Daemon
	path string
	ln   *net.UnixListener
	fi   os.FileInfo // our socket file, to unlink it only while it is ours
	wg   sync.WaitGroup
	mu   sync.Mutex
	cns  map[net.Conn]struct{}
	done chan struct{}
}

// StartControl opens the control socket (server.control_socket) and serves the admin CLI
// until the daemon has stopped. In a process started by `erlmcp upgrade` it takes the
// socket path over from the old process and then reports ready to it: the control socket
// is bound last, after every listener serves. Call after Start.
func (d *Daemon) StartControl() error {
	path := d.st.ControlSocketPath()
	child := IsUpgradeChild()
	cs, err := listenControl(d, path, child)
	if err != nil {
		return err
	}
	d.ops.mu.Lock()
	d.ops.ctl = cs
	d.ops.mu.Unlock()
	closeUnclaimedInherited()
	go func() {
		<-d.Done()
		cs.close()
	}()
	cs.wg.Add(1)
	go cs.serve()
	d.log.Info("listening", "transport", "control", "path", path)
	if child {
		notifyUpgradeParent("ready " + strconv.Itoa(os.Getpid()))
		sdNotify("MAINPID=" + strconv.Itoa(os.Getpid()) + "\nREADY=1")
	} else {
		sdNotify("READY=1")
	}
	return nil
}

// ControlAddr returns the control socket path, or "" before StartControl.
func (d *Daemon) ControlAddr() string {
	d.ops.mu.Lock()
	defer d.ops.mu.Unlock()
	if d.ops.ctl == nil {
		return ""
	}
	return d.ops.ctl.path
}

func listenControl(d *Daemon, path string, takeover bool) (*controlServer, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("server.control_socket: %w", err)
		}
	}
	if _, err := os.Lstat(path); err == nil {
		if !takeover {
			if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("server.control_socket %s: another erlmcp is running there (stop it, or set server.control_socket)", path)
			}
		}
		// Stale (or, at an upgrade, the old process's: it keeps its listener and stops
		// answering when it exits).
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("server.control_socket: removing stale %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("server.control_socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // close() unlinks only while the path is still ours
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("server.control_socket: %w", err)
	}
	fi, _ := os.Lstat(path)
	return &controlServer{d: d, path: path, ln: ln, fi: fi, cns: map[net.Conn]struct{}{}, done: make(chan struct{})}, nil
}

func (cs *controlServer) serve() {
	defer cs.wg.Done()
	for {
		c, err := cs.ln.Accept()
		if err != nil {
			return
		}
		cs.mu.Lock()
		select {
		case <-cs.done:
			cs.mu.Unlock()
			c.Close()
			return
		default:
		}
		cs.cns[c] = struct{}{}
		cs.wg.Add(1)
		cs.mu.Unlock()
		go cs.serveConn(c)
	}
}

// close stops the control socket: the listener, then every connection (a CLI waiting for
// the end of a stop reads EOF). The socket file is removed only if it is still ours.
func (cs *controlServer) close() {
	cs.mu.Lock()
	select {
	case <-cs.done:
		cs.mu.Unlock()
		return
	default:
	}
	close(cs.done)
	cs.ln.Close()
	for c := range cs.cns {
		c.Close()
	}
	cs.mu.Unlock()
	cs.unlinkIfOurs()
	cs.wg.Wait()
}

// unlinkIfOurs removes the socket file unless another process (the new one, after an
// upgrade) has bound its own socket at the path since.
func (cs *controlServer) unlinkIfOurs() {
	if fi, err := os.Lstat(cs.path); err == nil && cs.fi != nil && os.SameFile(fi, cs.fi) {
		os.Remove(cs.path)
	}
}

func (cs *controlServer) serveConn(c net.Conn) {
	defer cs.wg.Done()
	defer func() {
		cs.mu.Lock()
		delete(cs.cns, c)
		cs.mu.Unlock()
	}()
	r := bufio.NewReaderSize(c, 4096)
	for {
		line, err := readControlLine(r)
		if err != nil {
			c.Close()
			return
		}
		var req ControlRequest
		var resp ControlResponse
		if err := json.Unmarshal(line, &req); err != nil {
			resp = ControlResponse{Error: "control: bad request: " + err.Error()}
		} else {
			resp = cs.d.handleControl(req)
		}
		out, _ := json.Marshal(resp)
		if _, err := c.Write(append(out, '\n')); err != nil {
			c.Close()
			return
		}
		if resp.OK && (req.Cmd == "stop" || req.Cmd == "upgrade") {
			// Held open until the daemon has stopped: the CLI reads EOF then.
			go cs.d.drain()
		}
	}
}

func readControlLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		part, isPrefix, err := r.ReadLine()
		if err != nil {
			return nil, err
		}
		buf = append(buf, part...)
		if len(buf) > controlMaxLine {
			return nil, fmt.Errorf("control: request longer than %d bytes", controlMaxLine)
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

// drain shuts the daemon down gracefully, bounded by server.shutdown_timeout_ms.
func (d *Daemon) drain() {
	d.ops.mu.Lock()
	if cs := d.ops.ctl; cs != nil {
		cs.unlinkIfOurs() // the process may exit as soon as Shutdown returns
	}
	d.ops.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), d.ShutdownTimeout())
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		d.log.Warn("shutdown", "err", err)
	}
}

func (d *Daemon) handleControl(req ControlRequest) ControlResponse {
	var res any
	var err error
	switch req.Cmd {
	case "ping":
		res = "pong"
	case "versions":
		res = d.Versions()
	case "status":
		res = d.Status()
	case "stop":
		d.log.Info("stop requested on the control socket")
		res = map[string]any{"stopping": true, "pid": os.Getpid()}
	case "reopen_log":
		err = d.ReopenLog()
		if errors.Is(err, ErrNoLogFile) {
			err, res = nil, map[string]any{"reopened": false, "message": "logging to a stream (logging.file is empty): nothing to reopen"}
		} else if err == nil {
			res = map[string]any{"reopened": true}
		}
	case "reload":
		res, err = d.Reload()
	case "upgrade":
		var ur UpgradeRequest
		if req.Upgrade != nil {
			ur = *req.Upgrade
		}
		res, err = d.Upgrade(context.Background(), ur)
	default:
		err = fmt.Errorf("control: unknown command %q (ping, versions, status, stop, reopen_log, reload, upgrade)", req.Cmd)
	}
	if err != nil {
		return ControlResponse{Error: err.Error()}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return ControlResponse{Error: err.Error()}
	}
	return ControlResponse{OK: true, Result: raw}
}

// VersionsInfo is what `erlmcp versions` reports about a running daemon.
type VersionsInfo struct {
	BuildInfo
	Go           string            `json:"go"`
	Platform     string            `json:"platform"`
	PID          int               `json:"pid"`
	Protocols    []string          `json:"protocols"`
	Features     []string          `json:"features"`
	Dependencies map[string]string `json:"dependencies"`
}

// Versions returns the daemon's version, Go version, MCP protocol versions, enabled
// features and dependency versions (from the binary's build info).
func (d *Daemon) Versions() VersionsInfo {
	v := VersionsInfo{BuildInfo: d.build, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		PID: os.Getpid(), Dependencies: map[string]string{}}
	v.Protocols = append(v.Protocols, SessionVersions...)
	v.Protocols = append(v.Protocols, Version20260728)
	st := &d.st
	feat := func(on bool, name string) {
		if on {
			v.Features = append(v.Features, name)
		}
	}
	feat(st.Transports.TCP.Enabled, "tcp")
	feat(st.Transports.HTTP.Enabled, "http")
	feat(st.Transports.TLS.Enabled, "tls")
	feat(st.Observability.Metrics.Enabled, "metrics")
	feat(st.Observability.Health.Enabled, "health")
	feat(st.Observability.Tracing.Enabled, "tracing")
	feat(st.Hibernation.Enabled, "hibernation")
	feat(st.RateLimiter.Enabled, "rate_limiter")
	feat(st.MemoryGuard.Enabled, "memory_guard")
	feat(st.Auth.Enabled, "auth")
	feat(st.RequestSigning.Enabled, "request_signing")
	feat(st.SchemaValidator.Enabled, "schema_validator")
	feat(st.Cluster.Enabled, "cluster")
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			v.Dependencies[m.Path] = m.Version
		}
	}
	return v
}

// StatusInfo is `erlmcp status`: the answer to the seed's `erlmcp eval 'erlang:memory(total).'`.
type StatusInfo struct {
	Version     string           `json:"version"`
	PID         int              `json:"pid"`
	UptimeS     float64          `json:"uptime_seconds"`
	Ready       bool             `json:"ready"`
	NotReady    string           `json:"not_ready_reasons,omitempty"`
	Goroutines  int              `json:"goroutines"`
	Sessions    int              `json:"sessions"`
	Connections map[string]int64 `json:"connections"`
	// Memory is runtime/metrics' /memory/classes/... in bytes: "total" and each kind.
	Memory        map[string]uint64 `json:"memory"`
	GC            uint64            `json:"gc_cycles"`
	DisabledTools []string          `json:"disabled_tools,omitempty"`
	Config        string            `json:"config,omitempty"`
	Control       string            `json:"control_socket"`
	// Cluster is cluster mode's state (node, Redis, nodes seen), when it is on.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// Status returns memory (total and by kind), connections by transport, sessions,
// goroutines, uptime and pid.
func (d *Daemon) Status() StatusInfo {
	s := StatusInfo{Version: d.build.Version, PID: os.Getpid(), UptimeS: time.Since(d.started).Seconds(),
		Ready: d.obs.ready.Ready(), Goroutines: runtime.NumGoroutine(),
		Sessions: d.srv.Stats().Sessions, Connections: map[string]int64{}, Memory: map[string]uint64{},
		Cluster: d.clusterStatus()}
	if !s.Ready {
		s.NotReady = d.obs.ready.Reasons().String()
	}
	if d.tcp != nil {
		ls := d.tcp.Stats()
		s.Connections["tcp"] = int64(ls.ActiveLine)
		s.Connections["http"] = int64(ls.ActiveHTTP)
	}
	if d.sec != nil && d.sec.tls != nil {
		s.Connections["tls"] = int64(d.sec.tls.Conns())
	}
	var samples []rtmetrics.Sample
	for _, desc := range rtmetrics.All() {
		if strings.HasPrefix(desc.Name, "/memory/classes/") && desc.Kind == rtmetrics.KindUint64 {
			samples = append(samples, rtmetrics.Sample{Name: desc.Name})
		}
	}
	samples = append(samples, rtmetrics.Sample{Name: "/gc/cycles/total:gc-cycles"})
	rtmetrics.Read(samples)
	for _, sm := range samples {
		if sm.Value.Kind() != rtmetrics.KindUint64 {
			continue
		}
		if sm.Name == "/gc/cycles/total:gc-cycles" {
			s.GC = sm.Value.Uint64()
			continue
		}
		k := strings.TrimSuffix(strings.TrimPrefix(sm.Name, "/memory/classes/"), ":bytes")
		s.Memory[strings.ReplaceAll(k, "/", ".")] = sm.Value.Uint64()
	}
	d.ops.mu.Lock()
	for name := range d.ops.disabled {
		s.DisabledTools = append(s.DisabledTools, name)
	}
	s.Config = d.ops.cfgPath
	if d.ops.ctl != nil {
		s.Control = d.ops.ctl.path
	}
	d.ops.mu.Unlock()
	return s
}

// ControlCall sends one request to the control socket at path and returns the answer. The
// connection is returned open (nil on error) so that a caller of stop or upgrade can wait
// for the daemon to finish (read to EOF); close it otherwise.
func ControlCall(path string, req ControlRequest, timeout time.Duration) (ControlResponse, net.Conn, error) {
	var resp ControlResponse
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return resp, nil, err
	}
	if timeout > 0 {
		c.SetDeadline(time.Now().Add(timeout))
	}
	line, _ := json.Marshal(req)
	if _, err := c.Write(append(line, '\n')); err != nil {
		c.Close()
		return resp, nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	out, err := readControlLine(r)
	if err != nil {
		c.Close()
		return resp, nil, fmt.Errorf("control socket %s: reading the answer: %w", path, err)
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		c.Close()
		return resp, nil, fmt.Errorf("control socket %s: bad answer: %w", path, err)
	}
	c.SetDeadline(time.Time{})
	return resp, c, nil
}
