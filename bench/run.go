package bench

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// histShards spreads concurrent Record calls over several histograms so
// connections on different cores rarely touch the same cache lines.
const histShards = 8

// runner drives this process's share of the connections.
type runner struct {
	cfg    *Config
	n      int // connections in this process
	start  time.Time
	warm0  int64 // ns since start: end of warmup
	stopAt int64 // ns since start: no new requests after this
	tpl    [nKinds]template

	hist     [nKinds][histShards]*Histogram
	initHist *Histogram

	ok      atomic.Uint64 // replies after warmup
	okIn    atomic.Uint64 // replies after warmup that arrived before stopAt: the throughput numerator
	all     atomic.Uint64 // replies including warmup and errors: the CPU-per-request denominator
	errs    atomic.Uint64
	retried atomic.Uint64 // unanswered at a server-side close, sent again (--retry-unanswered)
	up      atomic.Int64
	budget  atomic.Int64
	bounded bool
	stopped atomic.Bool
	stopCh  chan struct{}
	stop1   sync.Once
	series  []atomic.Uint64 // completions per second after warmup
	last    atomic.Int64    // ns of the latest counted completion

	mu      sync.Mutex
	kinds   map[string]uint64
	samples map[string]string

	ready   chan struct{} // closed when every connection has dialed (or failed)
	go_     chan struct{} // closed once warm0 and stopAt are set from the ready time
	pending atomic.Int64
	wg      sync.WaitGroup
	cpu0    float64
}

func newRunner(cfg *Config) *runner {
	r := &runner{cfg: cfg, n: cfg.Conns, tpl: templates(cfg), initHist: NewHistogram(),
		stopCh: make(chan struct{}), kinds: map[string]uint64{}, samples: map[string]string{},
		ready: make(chan struct{}), go_: make(chan struct{})}
	for k := range r.hist {
		for s := range r.hist[k] {
			r.hist[k][s] = NewHistogram()
		}
	}
	// Until every connection is up, nothing is sent: warmup and duration
	// count from then (setClock), so a run with many connections measures
	// them all, not the ramp.
	r.warm0, r.stopAt = 1<<62, 1<<62
	if cfg.Mode == ModeIdle {
		r.warm0 = 0 // held until stop
	}
	if cfg.Requests > 0 {
		r.bounded = true
		r.budget.Store(cfg.Requests)
	}
	r.series = make([]atomic.Uint64, int(cfg.Duration/time.Second)+2)
	return r
}

func (r *runner) now() int64              { return int64(time.Since(r.start)) }
func (r *runner) wall(ns int64) time.Time { return r.start.Add(time.Duration(ns)) }
func (r *runner) stopping(now int64) bool { return now >= r.stopAt || r.stopped.Load() }

// take reserves one request of the --requests budget.
func (r *runner) take() bool { return !r.bounded || r.budget.Add(-1) >= 0 }

// tick counts a completion at now in the throughput series.
func (r *runner) tick(now int64) {
	if sec := (now - r.warm0) / int64(time.Second); sec >= 0 && int(sec) < len(r.series) {
		r.series[sec].Add(1)
	}
	r.last.Store(now)
}

// fail counts n errors of kind.
func (r *runner) fail(kind string, n int) {
	r.errs.Add(uint64(n))
	r.mu.Lock()
	r.kinds[kind] += uint64(n)
	r.mu.Unlock()
}

func (r *runner) failErr(err error, n int) {
	kind := errKind(err)
	r.errs.Add(uint64(n))
	r.mu.Lock()
	r.kinds[kind] += uint64(n)
	if _, ok := r.samples[kind]; !ok {
		r.samples[kind] = err.Error()
	}
	r.mu.Unlock()
}

// stop ends the run early (idle: ends the hold). Idempotent.
func (r *runner) stop() {
	r.stop1.Do(func() {
		r.stopped.Store(true)
		close(r.stopCh)
	})
}

// setClock starts the measured run once every connection has dialed.
func (r *runner) setClock() {
	select {
	case <-r.ready:
	case <-r.stopCh:
	}
	if r.cfg.Mode != ModeIdle {
		now := r.now()
		r.warm0 = now + int64(r.cfg.Warmup)
		r.stopAt = r.warm0 + int64(r.cfg.Duration)
	}
	close(r.go_)
}

// begin starts the connections in the background.
func (r *runner) begin() {
	r.cpu0 = cpuSeconds(syscall.RUSAGE_SELF)
	r.start = time.Now()
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	r.pending.Store(int64(r.n))
	if r.n == 0 {
		close(r.ready)
	}
	go r.setClock()
	for i := 0; i < r.n; i++ {
		c := newConn(r, r.cfg.connOffset+i)
		r.wg.Add(1)
		if r.cfg.Mode == ModeIdle {
			go r.idle(c, sem)
		} else {
			go r.load(c, sem)
		}
	}
}

func (r *runner) dialed() {
	if r.pending.Add(-1) == 0 {
		close(r.ready)
	}
}

// load runs one connection of a load mode, reconnecting after failures.
func (r *runner) load(c *conn, sem chan struct{}) {
	defer r.wg.Done()
	for first := true; ; first = false {
		sem <- struct{}{}
		err := c.dial()
		<-sem
		if first {
			r.dialed()
			<-r.go_ // the ramp: every connection dials before any sends
		}
		if err == nil && r.stopping(r.now()) {
			c.close()
		}
		if r.stopping(r.now()) {
			if err != nil {
				r.failErr(err, 1)
			}
			return
		}
		if err != nil && r.cfg.RetryUnanswered && errKind(err) == "closed" {
			// The server closed the new connection before answering its initialize (a
			// process handing its listener over, draining): nothing was executed, so
			// the session is opened again, like an unanswered request.
			r.retried.Add(1)
			r.backoff()
			continue
		}
		if err != nil {
			r.failErr(err, 1)
			r.backoff()
			continue
		}
		r.up.Add(1)
		err = c.drive()
		// A server may close after a reply ("Connection: close"): with
		// nothing in flight that is a reconnect, not an error.
		clean := errors.Is(err, errServerClosed) && c.inflight == 0
		if err != nil && !clean && r.cfg.RetryUnanswered && errKind(err) == "closed" {
			// The server closed with requests unanswered: not executed, so they are
			// sent again (as new requests) over the next connection.
			r.retried.Add(uint64(c.resetInflight()))
			clean = true
		} else if err != nil && !clean {
			r.failErr(err, max(c.resetInflight(), 1))
		}
		c.close()
		r.up.Add(-1)
		if err == nil {
			return
		}
		if !clean {
			r.backoff()
		}
	}
}

func (r *runner) backoff() {
	select {
	case <-time.After(100 * time.Millisecond):
	case <-r.stopCh:
	}
}

// idle opens and initializes one session, holds it until stop, then checks it
// still answers a ping.
func (r *runner) idle(c *conn, sem chan struct{}) {
	defer r.wg.Done()
	sem <- struct{}{}
	err := c.dial()
	<-sem
	r.dialed()
	if err != nil {
		r.failErr(err, 1)
		return
	}
	r.up.Add(1)
	// An HTTP session lives without a connection: close it, so what is held
	// is the session alone (--hold-conns keeps it, to measure both).
	dropped := r.cfg.Transport == "http" && !r.cfg.HoldConns
	if dropped {
		c.nc.Close()
		c.nc = nil
	}
	<-r.stopCh
	defer r.up.Add(-1)
	if dropped {
		sem <- struct{}{}
		err := c.connect()
		<-sem
		if err != nil {
			r.failErr(err, 1)
			return
		}
	}
	defer c.close()
	c.send(kindPing, r.now())
	if err := c.flush(); err != nil {
		r.failErr(err, 1)
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
	for c.inflight > 0 {
		if err := c.readOne(); err != nil {
			if errors.Is(err, errServerClosed) && c.inflight == 0 {
				return
			}
			r.failErr(ioKind(err), 1)
			return
		}
	}
}

// result waits for the connections and returns this process's figures.
func (r *runner) result() *partResult {
	r.wg.Wait()
	p := &partResult{OK: r.ok.Load(), OKIn: r.okIn.Load(), All: r.all.Load(), Errs: r.errs.Load(), Retried: r.retried.Load(), Errors: r.kinds, Samples: r.samples,
		Init: r.initHist.wire(), CPU: cpuSeconds(syscall.RUSAGE_SELF) - r.cpu0}
	for k := range r.hist {
		h := NewHistogram()
		for _, s := range r.hist[k] {
			h.Merge(s)
		}
		p.Hists[k] = h.wire()
	}
	for i := range r.series {
		p.Series = append(p.Series, r.series[i].Load())
	}
	// Measured time: to the last reply, at most to stopAt (replies to
	// requests still in flight then count in latency, not in throughput).
	if last := min(r.last.Load(), r.stopAt); last > r.warm0 {
		p.Elapsed = last - r.warm0
	}
	return p
}

// partResult is what one process reports: this process's share of the run.
type partResult struct {
	Hists   [nKinds]histWire  `json:"hists"`
	Init    histWire          `json:"init"`
	OK      uint64            `json:"ok"`
	OKIn    uint64            `json:"okIn"`
	All     uint64            `json:"all"`
	Errs    uint64            `json:"errs"`
	Retried uint64            `json:"retried"`
	Errors  map[string]uint64 `json:"errors"`
	Samples map[string]string `json:"samples"`
	Series  []uint64          `json:"series"`
	Elapsed int64             `json:"elapsed"` // ns from the end of warmup to the last completion
	CPU     float64           `json:"cpu"`     // seconds of user+system CPU
}

// cpuSeconds returns user+system CPU time of who.
func cpuSeconds(who int) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
