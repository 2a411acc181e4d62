package bench

import (
	"fmt"
	"io"
	"sort"
	"syscall"
	"time"
)

// Result is the outcome of a run, as printed by --json.
type Result struct {
	Mode      string  `json:"mode"`
	Transport string  `json:"transport"`
	Target    string  `json:"target"`
	Conns     int     `json:"conns"`
	Procs     int     `json:"procs"`
	Depth     int     `json:"depth"`
	Stateless bool    `json:"stateless"`
	Rate      float64 `json:"rate,omitempty"`
	// Seconds is the measured time: from the end of warmup to the last reply.
	Seconds float64 `json:"seconds"`
	// Requests counts successful replies to requests sent after warmup,
	// including those that arrived after the measured time.
	Requests uint64 `json:"requests"`
	// RPS is the replies that arrived within Seconds, divided by Seconds.
	RPS float64 `json:"rps"`
	// Errors counts failed requests (and failed connects), by kind in ErrorsByKind:
	// connect, timeout, closed, io, protocol, rpc_<code>, http_<status>.
	Errors uint64 `json:"errors"`
	// Retried counts requests a server-side close left unanswered that were sent
	// again (--retry-unanswered); they are not errors.
	Retried      uint64            `json:"retried,omitempty"`
	ErrorsByKind map[string]uint64 `json:"errorsByKind,omitempty"`
	ErrorSamples map[string]string `json:"errorSamples,omitempty"`
	// Latency summarizes all replies; ByMethod per request kind.
	Latency  Latency            `json:"latency"`
	ByMethod map[string]Latency `json:"byMethod,omitempty"`
	// Initialize is the connect+initialize latency of session-era runs.
	Initialize *Latency `json:"initialize,omitempty"`
	// Series is replies per second after warmup.
	Series []uint64 `json:"series"`
	// ClientCPUSeconds is the load generator's own CPU (all its processes).
	ClientCPUSeconds float64 `json:"clientCPUSeconds"`
	// ClientCPUPerReq is the generator's CPU per reply in microseconds.
	ClientCPUPerReq float64 `json:"clientCPUPerReqMicros"`
	// Server holds server samples when --pid or --metrics is given (always in idle mode).
	Server *ServerReport `json:"server,omitempty"`

	hist *Histogram
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func summarize(h *Histogram) Latency {
	ms := func(ns float64) float64 { return ns / 1e6 }
	return Latency{Count: h.total, Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
}

// ServerReport is the server side of a run.
type ServerReport struct {
	Baseline ServerStats `json:"baseline"`
	Loaded   ServerStats `json:"loaded"`
	// Sessions is the number of sessions open when Loaded was sampled (idle mode).
	Sessions int64 `json:"sessions,omitempty"`
	// RSSPerSession is (Loaded-Baseline RSS)/Sessions in bytes (idle mode).
	RSSPerSession float64 `json:"rssPerSessionBytes,omitempty"`
	// HeapPerSession is the heap delta per session in bytes, when /metrics has it (idle mode).
	HeapPerSession float64 `json:"heapPerSessionBytes,omitempty"`
	// GoroutinesPerSession is the goroutine delta per session, when known (idle mode).
	GoroutinesPerSession float64 `json:"goroutinesPerSession,omitempty"`
	// CPUPerReq is the server's CPU per reply in microseconds, when known.
	CPUPerReq float64 `json:"cpuPerReqMicros,omitempty"`
}

// raiseNoFile raises RLIMIT_NOFILE to its hard limit and returns the new soft limit.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

// fdReserve is the descriptors a process keeps for itself beyond its connections.
const fdReserve = 64

// Run runs cfg (already validated) and returns its result. Progress goes to
// progress each second unless cfg.Quiet.
func Run(cfg *Config, progress io.Writer) (*Result, error) {
	limit := raiseNoFile()
	perProc := int(limit) - fdReserve
	if need := (cfg.Conns + perProc - 1) / perProc; need > cfg.Procs {
		fmt.Fprintf(progress, "bench: %d connections exceed the open-file limit %d of one process: using %d worker processes (--procs)\n",
			cfg.Conns, limit, need)
		cfg.Procs = need
	}
	res := &Result{Mode: cfg.Mode, Transport: cfg.Transport, Conns: cfg.Conns, Procs: cfg.Procs,
		Depth: cfg.Depth, Stateless: cfg.Stateless, Rate: cfg.Rate, Target: cfg.Addr}
	if cfg.Transport == "http" {
		res.Target = cfg.URL
	}
	wantServer := cfg.PID > 0 || cfg.MetricsURL != ""
	var base ServerStats
	if wantServer {
		var ok bool
		if base, ok = sampleServer(cfg.PID, cfg.MetricsURL); !ok {
			fmt.Fprintf(progress, "bench: cannot sample the server (--pid %d, --metrics %q): server figures omitted\n", cfg.PID, cfg.MetricsURL)
			wantServer = false
		}
	} else if cfg.Mode == ModeIdle {
		fmt.Fprintln(progress, "bench: idle mode without --pid or --metrics: server memory is not reported")
	}

	cpu0 := cpuSeconds(syscall.RUSAGE_CHILDREN)
	parts, err := startParts(cfg, progress)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastOK uint64
	show := func() {
		if cfg.Quiet {
			return
		}
		var ok, errs uint64
		var up int64
		for _, p := range parts {
			o, e, u := p.counts()
			ok, errs, up = ok+o, errs+e, up+u
		}
		fmt.Fprintf(progress, "bench: %4.0fs  conns %d/%d  ok %d (%.0f/s)  errors %d\n",
			time.Since(start).Seconds(), up, cfg.Conns, ok, float64(ok-lastOK), errs)
		lastOK = ok
	}

	var loaded ServerStats
	var sessions int64
	if cfg.Mode == ModeIdle {
		// Wait for every session to be initialized (or to fail), then hold.
		for _, p := range parts {
			ch := p.readyCh()
		wait:
			for {
				select {
				case <-ch:
					break wait
				case <-tick.C:
					show()
				}
			}
		}
		if !cfg.Quiet {
			fmt.Fprintf(progress, "bench: sessions open after %.1fs; holding for %s\n", time.Since(start).Seconds(), cfg.Duration)
		}
		hold := time.After(cfg.Duration)
	holding:
		for {
			select {
			case <-hold:
				break holding
			case <-tick.C:
				show()
			}
		}
		for _, p := range parts {
			_, _, u := p.counts()
			sessions += u
		}
		if wantServer {
			loaded, _ = sampleServer(cfg.PID, cfg.MetricsURL)
		}
		for _, p := range parts {
			p.stop()
		}
	} else {
		// Bounded by the workers' own clocks; this is the backstop.
		// The ramp (every connection dials first) takes at most about
		// 2×timeout per wave of --dial-concurrency connections.
		ramp := time.Duration(cfg.Conns/max(cfg.DialConcurrency, 1)+1) * 2 * cfg.Timeout
		backstop := time.After(ramp + cfg.Warmup + cfg.Duration + cfg.Timeout + 10*time.Second)
		done := make(chan struct{})
		go func() {
			for _, p := range parts {
				_, _ = p.wait()
			}
			close(done)
		}()
	running:
		for {
			select {
			case <-done:
				break running
			case <-tick.C:
				show()
			case <-backstop:
				for _, p := range parts {
					p.stop()
				}
				backstop = nil
			}
		}
		if wantServer {
			loaded, _ = sampleServer(cfg.PID, cfg.MetricsURL)
		}
	}

	show() // the final count, also for runs shorter than a second

	var hists [nKinds]*Histogram
	for k := range hists {
		hists[k] = NewHistogram()
	}
	initH := NewHistogram()
	res.ErrorsByKind = map[string]uint64{}
	res.ErrorSamples = map[string]string{}
	var elapsed int64
	var inWindow uint64 // replies that arrived within the measured time
	var replies uint64  // including warmup: what the CPU figures are divided by
	var firstErr error
	for _, p := range parts {
		pr, err := p.wait()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if pr == nil {
			continue
		}
		for k := range hists {
			hists[k].Merge(pr.Hists[k].histogram())
		}
		initH.Merge(pr.Init.histogram())
		res.Requests += pr.OK
		inWindow += pr.OKIn
		replies += pr.All
		res.Errors += pr.Errs
		res.Retried += pr.Retried
		for k, v := range pr.Errors {
			res.ErrorsByKind[k] += v
		}
		for k, v := range pr.Samples {
			res.ErrorSamples[k] = v
		}
		for i, v := range pr.Series {
			for len(res.Series) <= i {
				res.Series = append(res.Series, 0)
			}
			res.Series[i] += v
		}
		elapsed = max(elapsed, pr.Elapsed)
		res.ClientCPUSeconds += pr.CPU
	}
	if len(parts) > 0 && firstErr != nil && res.Requests == 0 && res.Errors == 0 {
		return nil, firstErr
	}
	if cfg.Procs > 1 {
		res.ClientCPUSeconds = cpuSeconds(syscall.RUSAGE_CHILDREN) - cpu0
	}
	// Trim the series to the measured seconds.
	if n := int((time.Duration(elapsed) + time.Second - 1) / time.Second); n < len(res.Series) {
		res.Series = res.Series[:n]
	}
	all := NewHistogram()
	res.ByMethod = map[string]Latency{}
	for k, h := range hists {
		all.Merge(h)
		if h.total > 0 {
			res.ByMethod[kindNames[k]] = summarize(h)
		}
	}
	if len(res.ByMethod) <= 1 {
		res.ByMethod = nil
	}
	res.hist = all
	res.Latency = summarize(all)
	if initH.total > 0 {
		l := summarize(initH)
		res.Initialize = &l
	}
	if cfg.Mode == ModeIdle {
		res.Requests = 0 // the closing pings are a liveness check, not throughput
		res.Seconds = cfg.Duration.Seconds()
	} else {
		res.Seconds = time.Duration(elapsed).Seconds()
		if res.Seconds > 0 {
			res.RPS = float64(inWindow) / res.Seconds
		}
		if replies > 0 {
			res.ClientCPUPerReq = res.ClientCPUSeconds / float64(replies) * 1e6
		}
	}
	if wantServer {
		sr := &ServerReport{Baseline: base, Loaded: loaded, Sessions: sessions}
		if cfg.Mode == ModeIdle && sessions > 0 {
			sr.RSSPerSession = (float64(loaded.RSSBytes) - float64(base.RSSBytes)) / float64(sessions)
			if base.HeapBytes > 0 && loaded.HeapBytes > 0 {
				sr.HeapPerSession = (float64(loaded.HeapBytes) - float64(base.HeapBytes)) / float64(sessions)
			}
			if base.Goroutines >= 0 && loaded.Goroutines >= 0 {
				sr.GoroutinesPerSession = float64(loaded.Goroutines-base.Goroutines) / float64(sessions)
			}
		}
		if cfg.Mode != ModeIdle && base.CPUSeconds >= 0 && replies > 0 {
			sr.CPUPerReq = (loaded.CPUSeconds - base.CPUSeconds) / float64(replies) * 1e6
		}
		res.Server = sr
	}
	if len(res.ErrorsByKind) == 0 {
		res.ErrorsByKind, res.ErrorSamples = nil, nil
	}
	return res, nil
}

// startParts starts the in-process runner or the worker processes.
func startParts(cfg *Config, stderr io.Writer) ([]part, error) {
	if cfg.Procs <= 1 {
		r := newRunner(cfg)
		r.begin()
		return []part{localPart{r}}, nil
	}
	var parts []part
	off := cfg.connOffset
	for i := 0; i < cfg.Procs; i++ {
		spec := workerSpec{Config: *cfg, Offset: off, AllowRemote: cfg.AllowRemote}
		spec.Conns = share(cfg.Conns, cfg.Procs, i)
		spec.Procs, spec.Quiet = 1, true
		if cfg.Requests > 0 {
			spec.Requests = int64(share(int(cfg.Requests), cfg.Procs, i))
		}
		if cfg.Rate > 0 {
			spec.Rate = cfg.Rate * float64(spec.Conns) / float64(cfg.Conns)
		}
		spec.DialConcurrency = max(1, cfg.DialConcurrency/cfg.Procs)
		off += spec.Conns
		p, err := startWorker(spec, stderr)
		if err != nil {
			for _, q := range parts {
				q.stop()
				_, _ = q.wait()
			}
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// share is part i of n split into k near-equal parts.
func share(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
