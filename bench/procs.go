package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// part is one share of the connections: this process's runner or a worker
// process reporting over a pipe.
type part interface {
	counts() (ok, errs uint64, up int64)
	readyCh() <-chan struct{}
	stop()
	wait() (*partResult, error)
}

// localPart runs a share in this process.
type localPart struct{ r *runner }

func (p localPart) counts() (uint64, uint64, int64) {
	return p.r.ok.Load(), p.r.errs.Load(), p.r.up.Load()
}
func (p localPart) readyCh() <-chan struct{}   { return p.r.ready }
func (p localPart) stop()                      { p.r.stop() }
func (p localPart) wait() (*partResult, error) { return p.r.result(), nil }

// workerEnv marks a re-executed worker process (tests use it in TestMain).
const workerEnv = "ERLMCP_BENCH_WORKER"

// workerCommand returns the program and leading arguments that re-execute
// this binary as a bench worker. Tests replace it.
var workerCommand = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, []string{"bench"}, err
}

// workerSpec is the Config a worker runs, passed as JSON in --worker.
type workerSpec struct {
	Config
	Offset      int  `json:"offset"`
	AllowRemote bool `json:"allowRemote"`
}

// workerMsg is one line a worker writes to its stdout.
type workerMsg struct {
	T      string      `json:"t"` // "p" progress, "ready", "result", "error"
	OK     uint64      `json:"ok,omitempty"`
	Errs   uint64      `json:"errs,omitempty"`
	Up     int64       `json:"up,omitempty"`
	Result *partResult `json:"result,omitempty"`
	Err    string      `json:"err,omitempty"`
}

// procPart is a worker process.
type procPart struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ok    atomic.Uint64
	errs  atomic.Uint64
	up    atomic.Int64
	ready chan struct{}
	done  chan struct{}
	res   *partResult
	err   error
	once  sync.Once
}

func startWorker(spec workerSpec, stderr io.Writer) (*procPart, error) {
	exe, lead, err := workerCommand()
	if err != nil {
		return nil, fmt.Errorf("bench: finding own executable for --procs: %w", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append(lead, "--worker", string(js))...)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting worker %s: %w", exe, err)
	}
	p := &procPart{cmd: cmd, stdin: stdin, ready: make(chan struct{}), done: make(chan struct{})}
	go p.read(stdout)
	return p, nil
}

func (p *procPart) read(stdout io.Reader) {
	defer close(p.done)
	readyClosed := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			p.err = fmt.Errorf("bench: worker %d wrote %q: %v", p.cmd.Process.Pid, snippet(sc.Bytes()), err)
			continue
		}
		switch m.T {
		case "p":
			p.ok.Store(m.OK)
			p.errs.Store(m.Errs)
			p.up.Store(m.Up)
		case "ready":
			if !readyClosed {
				close(p.ready)
				readyClosed = true
			}
		case "result":
			p.res = m.Result
		case "error":
			p.err = fmt.Errorf("bench: worker %d: %s", p.cmd.Process.Pid, m.Err)
		}
	}
	if !readyClosed {
		close(p.ready)
	}
	if err := p.cmd.Wait(); err != nil && p.err == nil {
		p.err = fmt.Errorf("bench: worker %d: %w", p.cmd.Process.Pid, err)
	}
}

func (p *procPart) counts() (uint64, uint64, int64) { return p.ok.Load(), p.errs.Load(), p.up.Load() }
func (p *procPart) readyCh() <-chan struct{}        { return p.ready }

// stop closes the worker's stdin, its signal to stop.
func (p *procPart) stop() { p.once.Do(func() { p.stdin.Close() }) }

// wait waits for the worker's result; a worker that does not exit within a
// minute of being stopped is killed.
func (p *procPart) wait() (*partResult, error) {
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if p.res == nil && p.err == nil {
		p.err = fmt.Errorf("bench: worker %d exited without a result", p.cmd.Process.Pid)
	}
	return p.res, p.err
}

// runWorker is the worker process: it runs its share, reports progress to
// stdout as JSON lines, and stops when stdin closes (or by itself).
func runWorker(specJSON string, stdout io.Writer) int {
	enc := json.NewEncoder(stdout)
	var mu sync.Mutex
	send := func(m workerMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	var spec workerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		send(workerMsg{T: "error", Err: "bad --worker spec: " + err.Error()})
		return 2
	}
	cfg := spec.Config
	cfg.AllowRemote = spec.AllowRemote
	if err := cfg.Validate(); err != nil {
		send(workerMsg{T: "error", Err: err.Error()})
		return 2
	}
	cfg.connOffset = spec.Offset
	raiseNoFile()
	r := newRunner(&cfg)
	go func() { // stdin closing (parent's stop or death) stops the run
		_, _ = io.Copy(io.Discard, os.Stdin)
		r.stop()
	}()
	r.begin()
	doneCh := make(chan *partResult)
	go func() { doneCh <- r.result() }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	ready := r.ready
	for {
		select {
		case <-ready:
			send(workerMsg{T: "p", OK: r.ok.Load(), Errs: r.errs.Load(), Up: r.up.Load()})
			send(workerMsg{T: "ready"})
			ready = nil
		case <-tick.C:
			send(workerMsg{T: "p", OK: r.ok.Load(), Errs: r.errs.Load(), Up: r.up.Load()})
		case res := <-doneCh:
			send(workerMsg{T: "p", OK: r.ok.Load(), Errs: r.errs.Load(), Up: r.up.Load()})
			send(workerMsg{T: "result", Result: res})
			return 0
		}
	}
}
