package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/erlmcp/erlmcp-go/loop"
	"golang.org/x/sys/unix"
)

// Zero-downtime binary upgrade (`erlmcp upgrade`), the Go counterpart of OTP's hot code
// loading (seed 3.7). The running process (the parent) starts the new binary with the same
// arguments and hands it its listening sockets; the child binds nothing that the parent
// holds, starts serving on the inherited sockets and reports ready; only then does the
// parent stop accepting, drain in-flight requests (Daemon.Shutdown) and exit. Both
// processes accept on the same kernel sockets for a moment, so no connection attempt is
// refused at any point.
//
// The scheme is tableflip's (github.com/cloudflare/tableflip), written out here because
// tableflip always re-executes os.Args[0] (no `-binary PATH`), passes sockets only to
// listeners created through its own Fds, and reports a failed child only as "exited":
// here every listener keeps its own net.Listen call through listenInherited, the child
// can be another binary, and the child's startup error travels back to the operator.
//
// Wire format, parent → child, all in the environment:
//
//	ERLMCP_UPGRADE_LISTENERS=tcp:4,metrics:5,tls:6   role:fd of each inherited socket
//	ERLMCP_UPGRADE_READY_FD=3                        pipe: the child writes one line,
//	                                                 "ready <pid>" or "error <reason>"

// Environment variables of the upgrade hand-off.
const (
	envUpgradeListeners = "ERLMCP_UPGRADE_LISTENERS"
	envUpgradeReadyFD   = "ERLMCP_UPGRADE_READY_FD"
)

// DefaultUpgradeTimeout bounds how long the parent waits for the new process to be ready.
const DefaultUpgradeTimeout = 30 * time.Second

// Listener roles: the sockets an upgrade hands over.
const (
	roleTCP     = "tcp"
	roleMetrics = "metrics"
	roleTLS     = "tls"
)

// inherited is what this process received from its parent at an upgrade. It is
// process-wide by nature (file descriptors belong to the process), read once.
var inherited struct {
	once  sync.Once
	mu    sync.Mutex
	lns   map[string]net.Listener // unclaimed inherited listeners by role
	ready *os.File                // the parent's ready pipe; nil when not an upgrade child
	err   error
}

func loadInherited() {
	inherited.once.Do(func() {
		inherited.lns = map[string]net.Listener{}
		list, readyFD := os.Getenv(envUpgradeListeners), os.Getenv(envUpgradeReadyFD)
		// Our own children must not see them: the next upgrade sets them afresh.
		os.Unsetenv(envUpgradeListeners)
		os.Unsetenv(envUpgradeReadyFD)
		if readyFD != "" {
			fd, err := strconv.Atoi(readyFD)
			if err != nil || fd < 3 {
				inherited.err = fmt.Errorf("upgrade: %s=%q: want a descriptor number ≥ 3", envUpgradeReadyFD, readyFD)
				return
			}
			unix.CloseOnExec(fd)
			inherited.ready = os.NewFile(uintptr(fd), "upgrade-ready")
		}
		for _, item := range strings.Split(list, ",") {
			if item == "" {
				continue
			}
			role, fds, _ := strings.Cut(item, ":")
			fd, err := strconv.Atoi(fds)
			if err != nil || fd < 3 {
				inherited.err = fmt.Errorf("upgrade: %s item %q: want role:fd", envUpgradeListeners, item)
				return
			}
			unix.CloseOnExec(fd)
			f := os.NewFile(uintptr(fd), "inherited-"+role)
			ln, err := net.FileListener(f) // dups the descriptor
			f.Close()
			if err != nil {
				inherited.err = fmt.Errorf("upgrade: inherited %s socket (fd %d): %w", role, fd, err)
				return
			}
			inherited.lns[role] = ln
		}
	})
}

// IsUpgradeChild reports whether this process was started by `erlmcp upgrade` of a running
// erlmcp (and has not yet reported ready).
func IsUpgradeChild() bool {
	loadInherited()
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	return inherited.ready != nil
}

// listenInherited returns the socket the parent handed over for role when this process is
// an upgrade child and the configured addr is compatible with it (same port, or port 0),
// and otherwise binds addr. An inherited socket whose port no longer matches the
// configuration is closed (the parent keeps serving it until it exits).
func listenInherited(role, network, addr string) (net.Listener, error) {
	loadInherited()
	if inherited.err != nil {
		return nil, inherited.err
	}
	inherited.mu.Lock()
	ln := inherited.lns[role]
	delete(inherited.lns, role)
	inherited.mu.Unlock()
	if ln != nil {
		if portMatches(ln.Addr(), addr) {
			return ln, nil
		}
		ln.Close()
	}
	return net.Listen(network, addr)
}

func portMatches(a net.Addr, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ta, ok := a.(*net.TCPAddr)
	return ok && (port == "0" || port == strconv.Itoa(ta.Port))
}

// closeUnclaimedInherited closes inherited sockets nothing asked for (a listener the new
// configuration turned off).
func closeUnclaimedInherited() {
	loadInherited()
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for role, ln := range inherited.lns {
		ln.Close()
		delete(inherited.lns, role)
	}
}

// notifyUpgradeParent writes the child's one-line verdict ("ready <pid>" or
// "error <reason>") to the parent's ready pipe and closes it. A no-op when this process
// is not an upgrade child or has already reported.
func notifyUpgradeParent(line string) {
	loadInherited()
	inherited.mu.Lock()
	f := inherited.ready
	inherited.ready = nil
	inherited.mu.Unlock()
	if f == nil {
		return
	}
	_, _ = f.WriteString(strings.ReplaceAll(line, "\n", " ") + "\n")
	f.Close()
}

// UpgradeChildFailed tells the parent of an upgrade why this process could not start
// (cmd/erlmcp calls it on a failed `erlmcp start`), so `erlmcp upgrade` prints the reason.
// A no-op in a process that is not an upgrade child.
func UpgradeChildFailed(reason string) { notifyUpgradeParent("error " + reason) }

// listenLine binds the TCP transport's listener (inherited at an upgrade) and keeps the
// net.Listener so that the next upgrade can hand it on.
func (d *Daemon) listenLine() (*loop.Server, error) {
	cfg := d.LineConfig()
	ln, err := listenInherited(roleTCP, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("loop: listen tcp %s: %w", cfg.Addr, err)
	}
	cfg.Listener = ln
	s, err := loop.Listen(cfg)
	if err != nil {
		return nil, err
	}
	d.ops.mu.Lock()
	d.ops.tcpLn = ln
	d.ops.mu.Unlock()
	return s, nil
}

// UpgradeRequest is what `erlmcp upgrade` asks of the running daemon.
type UpgradeRequest struct {
	// Binary is the executable to start; empty means this process's executable (the path
	// it was started from: a release install replaces the file there).
	Binary string `json:"binary,omitempty"`
	// TimeoutMs bounds the wait for the new process to report ready; 0 means
	// DefaultUpgradeTimeout.
	TimeoutMs int `json:"timeout_ms,omitempty"`
}

// UpgradeResult is the daemon's answer to a successful upgrade.
type UpgradeResult struct {
	OldPID  int      `json:"old_pid"`
	NewPID  int      `json:"new_pid"`
	Binary  string   `json:"binary"`
	Handed  []string `json:"listeners"`
	Message string   `json:"message"`
}

// ErrUpgradeInProgress is returned by Upgrade while another upgrade runs.
var ErrUpgradeInProgress = errors.New("upgrade: another upgrade is in progress")

// Upgrade starts the new binary with this process's arguments and listening sockets and
// waits until it reports ready. On success the caller drains this daemon (Shutdown): the
// new process already serves the same sockets. On failure (the child exits, reports an
// error, or is not ready within the timeout, when it is killed) this daemon serves on
// untouched and the error says why.
func (d *Daemon) Upgrade(ctx context.Context, req UpgradeRequest) (UpgradeResult, error) {
	if !d.ops.upgrading.CompareAndSwap(false, true) {
		return UpgradeResult{}, ErrUpgradeInProgress
	}
	defer d.ops.upgrading.Store(false)
	res := UpgradeResult{OldPID: os.Getpid(), Binary: req.Binary}
	if res.Binary == "" {
		exe, err := os.Executable() // on Linux, the path even after the file was replaced
		if err != nil {
			return res, fmt.Errorf("upgrade: finding this executable: %w", err)
		}
		res.Binary = exe
	}
	if fi, err := os.Stat(res.Binary); err != nil {
		return res, fmt.Errorf("upgrade: new binary: %w", err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return res, fmt.Errorf("upgrade: new binary %s is not executable", res.Binary)
	}
	timeout := DefaultUpgradeTimeout
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}

	// The sockets to hand over, as raw duplicates: an *os.File's Fd() would switch the
	// shared socket to blocking mode under our own pollers.
	type handed struct {
		role string
		fd   int
	}
	var socks []handed
	defer func() {
		for _, h := range socks {
			unix.Close(h.fd)
		}
	}()
	for _, r := range d.handoffListeners() {
		fd, err := dupListener(r.ln)
		if err != nil {
			return res, fmt.Errorf("upgrade: %s listener: %w", r.role, err)
		}
		socks = append(socks, handed{r.role, fd})
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("upgrade: %w", err)
	}
	defer pr.Close()
	// Child descriptors: 0-2 as ours, 3 the ready pipe, then the sockets.
	files := []uintptr{0, 1, 2, 0}
	var pwFD int
	if rc, err := pw.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { pwFD = int(fd) })
	}
	files[3] = uintptr(pwFD)
	var list []string
	for i, h := range socks {
		files = append(files, uintptr(h.fd))
		list = append(list, fmt.Sprintf("%s:%d", h.role, 4+i))
		res.Handed = append(res.Handed, h.role)
	}
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envUpgradeListeners+"=") && !strings.HasPrefix(kv, envUpgradeReadyFD+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, envUpgradeReadyFD+"=3", envUpgradeListeners+"="+strings.Join(list, ","))
	argv := append([]string{res.Binary}, os.Args[1:]...)
	d.log.Info("upgrade: starting the new binary", "binary", res.Binary, "listeners", strings.Join(list, ","))
	pid, err := syscall.ForkExec(res.Binary, argv, &syscall.ProcAttr{Env: env, Files: files})
	pw.Close() // only the child holds the write end now: EOF means it exited
	if err != nil {
		return res, fmt.Errorf("upgrade: starting %s: %w", res.Binary, err)
	}
	res.NewPID = pid
	proc, _ := os.FindProcess(pid)
	exited := make(chan string, 1)
	go func() {
		st, err := proc.Wait() // reaps the child if it dies while we live
		if err != nil {
			exited <- err.Error()
			return
		}
		exited <- st.String()
	}()
	verdict := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil && line == "" {
			line = "eof"
		}
		verdict <- strings.TrimSpace(line)
	}()
	fail := func(why string) (UpgradeResult, error) {
		_ = proc.Kill()
		d.log.Error("upgrade failed; this process keeps serving", "binary", res.Binary, "new_pid", pid, "reason", why)
		return res, fmt.Errorf("upgrade: new process %d (%s) %s; the old process %d keeps serving", pid, res.Binary, why, res.OldPID)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-verdict:
		switch {
		case strings.HasPrefix(v, "ready"):
			res.Message = fmt.Sprintf("new process %d serving; old process %d draining", pid, res.OldPID)
			d.log.Info("upgrade: new process ready; draining", "new_pid", pid)
			return res, nil
		case strings.HasPrefix(v, "error "):
			return fail("failed to start: " + strings.TrimPrefix(v, "error "))
		}
		select {
		case st := <-exited:
			return fail("exited before it was ready (" + st + "); see its log")
		case <-time.After(2 * time.Second):
			return fail("closed its ready pipe without reporting ready")
		}
	case <-t.C:
		return fail(fmt.Sprintf("was not ready within %s (killed)", timeout))
	case <-ctx.Done():
		return fail("was abandoned: " + ctx.Err().Error())
	}
}

type roleListener struct {
	role string
	ln   net.Listener
}

// handoffListeners returns the listening sockets an upgrade hands over.
func (d *Daemon) handoffListeners() []roleListener {
	var out []roleListener
	d.ops.mu.Lock()
	if d.ops.tcpLn != nil && d.tcp != nil {
		out = append(out, roleListener{roleTCP, d.ops.tcpLn})
	}
	d.ops.mu.Unlock()
	if m := d.obs.metrics; m != nil && m.ln != nil {
		out = append(out, roleListener{roleMetrics, m.ln})
	}
	if t := d.sec.tls; t != nil && t.ln != nil {
		out = append(out, roleListener{roleTLS, t.ln})
	}
	return out
}

// dupListener duplicates ln's socket descriptor (close-on-exec; ForkExec clears it in the
// child) without touching its blocking mode.
func dupListener(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// sdNotify sends state to systemd's notify socket when the service runs with
// Type=notify (NOTIFY_SOCKET set); after an upgrade the new process says
// "MAINPID=<pid>" so systemd follows it (needs NotifyAccess=all).
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
