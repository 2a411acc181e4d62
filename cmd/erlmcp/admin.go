package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/erlmcp/erlmcp-go/server"
)

// The admin CLI: commands that talk to the running daemon over its control socket
// (server/control.go), plus `erlmcp config check|defaults`, which need no daemon.

// source returns the config file and the overrides (as -set key=value, flags included)
// that `erlmcp reload` must apply again.
func (c *configFlags) source() (string, []string) {
	sets := append([]string(nil), c.sets...)
	if c.addr != "" {
		sets = append(sets, "transports.tcp.addr="+c.addr)
	}
	if c.profile != "" {
		sets = append(sets, "server.profile="+c.profile)
	}
	return c.config, sets
}

// runStart is `erlmcp start`. In a process started by `erlmcp upgrade` a failed start is
// also reported to the old process, whose `erlmcp upgrade` prints the reason.
func runStart(args []string, stderr io.Writer) int {
	lw := &lastLine{w: stderr}
	code := cmdStart(args, lw)
	if code != 0 {
		server.UpgradeChildFailed(lw.last())
	}
	return code
}

// lastLine passes writes through and remembers the last line starting with "erlmcp: ".
type lastLine struct {
	w    io.Writer
	mu   sync.Mutex
	line string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	for _, ln := range strings.Split(string(p), "\n") {
		if strings.HasPrefix(ln, "erlmcp: ") {
			l.line = strings.TrimPrefix(ln, "erlmcp: ")
		}
	}
	l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lastLine) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.line == "" {
		return "exited with an error (see its log)"
	}
	return l.line
}

// adminFlags are the flags of every admin command: the config flags find the socket.
type adminFlags struct {
	configFlags
	socket string
}

func newAdminFlags(name string, stderr io.Writer) (*flag.FlagSet, *adminFlags) {
	fs := flag.NewFlagSet("erlmcp "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := &adminFlags{}
	af.register(fs)
	fs.StringVar(&af.socket, "socket", "", "control socket path, overriding server.control_socket (default $XDG_RUNTIME_DIR/erlmcp.sock, else /tmp/erlmcp-$UID/erlmcp.sock)")
	return fs, af
}

// socketPath resolves the control socket from -socket, else from the config.
func (af *adminFlags) socketPath() (string, error) {
	if af.socket != "" {
		return af.socket, nil
	}
	st, err := af.load()
	if err != nil {
		return "", err
	}
	return st.ControlSocketPath(), nil
}

// errNoServer is a control socket that does not answer.
type errNoServer struct {
	path string
	err  error
}

func (e errNoServer) Error() string {
	why := e.err
	var op *net.OpError
	if errors.As(e.err, &op) && op.Err != nil {
		why = op.Err
	}
	return fmt.Sprintf("no server running (control socket %s: %v)", e.path, why)
}

// call sends one control request; the connection is returned open for stop/upgrade.
func call(path string, req server.ControlRequest, timeout time.Duration) (json.RawMessage, net.Conn, error) {
	resp, c, err := server.ControlCall(path, req, timeout)
	if err != nil {
		if c == nil && isDialError(err) {
			return nil, nil, errNoServer{path, err}
		}
		return nil, nil, err
	}
	if !resp.OK {
		c.Close()
		return nil, nil, errors.New(resp.Error)
	}
	return resp.Result, c, nil
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func runAdmin(args []string, stdout, stderr io.Writer) int {
	name := args[0]
	if name == "config" {
		return cmdConfig(args[1:], stdout, stderr)
	}
	fs, af := newAdminFlags(name, stderr)
	asJSON := false
	binary := ""
	timeout := 0 * time.Second
	switch name {
	case "status":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "reload":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "upgrade":
		fs.StringVar(&binary, "binary", "", "the new executable (default: the running one's path, which a release install replaces)")
		fs.DurationVar(&timeout, "timeout", server.DefaultUpgradeTimeout, "how long the new process has to report ready before it is killed and the old one keeps serving")
	}
	wait := 0 * time.Second
	if name == "stop" || name == "upgrade" {
		fs.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the old process to finish draining and exit (0: do not wait)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	path, err := af.socketPath()
	if err != nil {
		fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		return 1
	}
	req := server.ControlRequest{Cmd: name}
	if name == "upgrade" {
		if binary != "" {
			if binary, err = filepath.Abs(binary); err != nil {
				fmt.Fprintf(stderr, "erlmcp: %v\n", err)
				return 1
			}
		}
		req.Upgrade = &server.UpgradeRequest{Binary: binary, TimeoutMs: int(timeout / time.Millisecond)}
	}
	res, c, err := call(path, req, timeout+30*time.Second)
	if err != nil {
		var ns errNoServer
		if name == "stop" && errors.As(err, &ns) {
			// systemd's ExecStop runs also after the process died: nothing to stop is fine.
			fmt.Fprintf(stdout, "erlmcp: %v: nothing to stop\n", err)
			return 0
		}
		if name == "upgrade" {
			fmt.Fprintf(stderr, "erlmcp: upgrade failed: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		}
		return 1
	}
	defer c.Close()
	switch name {
	case "ping":
		fmt.Fprintln(stdout, "pong")
	case "status":
		if asJSON {
			writeIndented(stdout, res)
			break
		}
		var s server.StatusInfo
		_ = json.Unmarshal(res, &s)
		printStatus(stdout, &s)
	case "reopen_log":
		var r struct {
			Reopened bool   `json:"reopened"`
			Message  string `json:"message"`
		}
		_ = json.Unmarshal(res, &r)
		if r.Reopened {
			fmt.Fprintln(stdout, "log file reopened")
		} else {
			fmt.Fprintln(stdout, r.Message)
		}
	case "reload":
		if asJSON {
			writeIndented(stdout, res)
			break
		}
		var r server.ReloadReport
		_ = json.Unmarshal(res, &r)
		printReload(stdout, &r)
	case "stop", "upgrade":
		if name == "stop" {
			var r struct{ PID int }
			_ = json.Unmarshal(res, &r)
			fmt.Fprintf(stdout, "stopping erlmcp (pid %d): draining\n", r.PID)
		} else {
			var r server.UpgradeResult
			_ = json.Unmarshal(res, &r)
			fmt.Fprintf(stdout, "upgrade: %s (binary %s, listeners %s)\n", r.Message, r.Binary, strings.Join(r.Handed, ","))
		}
		if wait > 0 {
			c.SetReadDeadline(time.Now().Add(wait))
			_, err := io.Copy(io.Discard, c) // EOF when the old process has stopped
			if err != nil {
				fmt.Fprintf(stderr, "erlmcp: still draining after %s\n", wait)
				return 1
			}
			fmt.Fprintln(stdout, "old process stopped")
		}
	}
	return 0
}

func writeIndented(w io.Writer, raw json.RawMessage) {
	var b bytes.Buffer
	_ = json.Indent(&b, raw, "", "  ")
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

func printStatus(w io.Writer, s *server.StatusInfo) {
	ready := "ready"
	if !s.Ready {
		ready = "not ready (" + s.NotReady + ")"
	}
	fmt.Fprintf(w, "erlmcp %s  pid %d  up %s  %s\n", s.Version, s.PID, (time.Duration(s.UptimeS * float64(time.Second))).Round(time.Second), ready)
	fmt.Fprintf(w, "sessions     %d\ngoroutines   %d\ngc cycles    %d\n", s.Sessions, s.Goroutines, s.GC)
	var tr []string
	for k := range s.Connections {
		tr = append(tr, k)
	}
	sort.Strings(tr)
	fmt.Fprint(w, "connections ")
	for _, k := range tr {
		fmt.Fprintf(w, " %s=%d", k, s.Connections[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "memory total %s\n", bytesHuman(s.Memory["total"]))
	var kinds []string
	for k := range s.Memory {
		if k != "total" {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-36s %s\n", k, bytesHuman(s.Memory[k]))
	}
	if len(s.DisabledTools) > 0 {
		fmt.Fprintf(w, "disabled tools: %s\n", strings.Join(s.DisabledTools, ", "))
	}
	if c := s.Cluster; c != nil {
		printCluster(w, c)
	}
}

// printCluster prints cluster mode's part of `erlmcp status`: this node, Redis, and every
// node seen with its sessions.
func printCluster(w io.Writer, c *server.ClusterStatus) {
	redis := c.Redis
	if c.Redis != "up" && c.LastError != "" {
		redis += " (" + c.LastError + " at " + c.LastErrorAt + ")"
	}
	fmt.Fprintf(w, "cluster node %s  redis %s\n", c.Node, redis)
	fmt.Fprintf(w, "  sessions here %d  rehydrated %d  published %d  received %d  redis errors %d  queued %d\n",
		c.SessionsLocal, c.Rehydrations, c.Published, c.Received, c.Errors, c.Queued)
	fmt.Fprintf(w, "  nodes seen   %d\n", len(c.Nodes))
	for _, n := range c.Nodes {
		self := ""
		if n.Name == c.Node {
			self = "  (this node)"
		}
		up := time.Since(time.UnixMilli(n.Started)).Round(time.Second)
		fmt.Fprintf(w, "  %-24s sessions %-7d addr %-22s version %-10s up %s%s\n", n.Name, n.Sessions, n.Addr, n.Version, up, self)
	}
}

func bytesHuman(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printReload(w io.Writer, r *server.ReloadReport) {
	fmt.Fprintf(w, "reloaded %s\n", r.Config)
	if len(r.Applied) == 0 && len(r.Restart) == 0 {
		fmt.Fprintln(w, "no changes")
	}
	for _, c := range r.Applied {
		fmt.Fprintf(w, "applied  %s: %s -> %s\n", c.Key, c.Old, c.New)
	}
	for _, c := range r.Restart {
		fmt.Fprintf(w, "restart  %s: %s -> %s (needs a new process: erlmcp upgrade applies it without downtime)\n", c.Key, c.Old, c.New)
	}
	if r.TLSReloaded {
		fmt.Fprintln(w, "tls certificates reloaded")
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning  %s\n", s)
	}
}

// cmdVersionsAll is `erlmcp versions`: this binary's versions, and the running server's
// when one answers on the control socket.
func cmdVersionsAll(args []string, stdout, stderr io.Writer) int {
	fs, af := newAdminFlags("versions", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var local bytes.Buffer
	largs := []string{}
	if *asJSON {
		largs = append(largs, "-json")
	}
	if code := cmdVersions(largs, &local); code != 0 {
		return code
	}
	var running *server.VersionsInfo
	if path, err := af.socketPath(); err == nil {
		if res, c, err := call(path, server.ControlRequest{Cmd: "versions"}, 5*time.Second); err == nil {
			c.Close()
			running = new(server.VersionsInfo)
			if json.Unmarshal(res, running) != nil {
				running = nil
			}
		}
	}
	if *asJSON {
		var m map[string]any
		if err := json.Unmarshal(local.Bytes(), &m); err != nil || running == nil {
			stdout.Write(local.Bytes())
			return 0
		}
		m["server"] = running
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(m)
		return 0
	}
	stdout.Write(local.Bytes())
	if running != nil {
		fmt.Fprintf(stdout, "running server: erlmcp %s (commit %s, built %s, %s) pid %d, features: %s\n",
			running.Version, running.Commit, running.Date, running.Go, running.PID, strings.Join(running.Features, ","))
	}
	return 0
}

// cmdConfig is `erlmcp config check FILE` and the hidden `erlmcp config defaults`.
func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: erlmcp config check FILE")
		return 2
	}
	switch args[0] {
	case "check":
		fs := flag.NewFlagSet("erlmcp config check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: erlmcp config check FILE")
			return 2
		}
		if _, err := server.LoadSettings(fs.Arg(0)); err != nil {
			fmt.Fprintf(stderr, "erlmcp: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", fs.Arg(0))
		return 0
	case "defaults":
		return cmdConfigDefaults(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "erlmcp: config: unknown subcommand %q (check)\n", args[0])
	return 2
}
