package server

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// The priority lane (seed 3.3). ping, notifications/cancelled and health probes are answered
// inline on the connection's event goroutine, ahead of any queued tool work: they never enter
// the worker pool. That alone is not enough, because Go has no goroutine priorities: measured
// on 2 cores, 256 workers running a CPU-bound tool left the event goroutines waiting behind
// them in the run queues, and ping p99 rose to ~550 ms (BENCHMARKS.md).
//
// cpuGate bounds how many worker handlers run at once, adapting the bound to the runtime's own
// measure of CPU pressure: the scheduling latency of goroutines (/sched/latencies:seconds, the
// time a runnable goroutine waits for a CPU). When more than schedSlowFrac of the goroutines
// that became runnable since the last look waited longer than schedSlow, the bound is halved
// (down to one); after gateCalmLooks looks in a row where under a quarter of that did while
// handlers wait at the gate, it grows by a quarter. Handlers that block (I/O, sleeps, waiting on the client) add no scheduling
// latency, so they keep the full concurrency; CPU-bound handlers are brought down to what
// leaves the event goroutines a CPU. Handlers waiting at the gate are parked, not runnable.
//
// The gate is looked at from acquire and release (at most every gateInterval): an idle server
// does no work for it and it has no goroutine. It is process-wide (workGate), as the CPUs are:
// the worker pools of all Servers in the process share it, and each pool still bounds its own
// concurrency (workers.max).
const (
	gateInterval  = 20 * time.Millisecond
	schedSlow     = 4 * time.Millisecond
	schedSlowFrac = 0.01
	gateMinEvents = 16 // sampled scheduling events (the runtime records ~1 in 8) a look needs to judge
	gateCalmLooks = 5
)

// workGate gates the worker handlers of every Server in the process.
var workGate = newCPUGate(1 << 16)

type cpuGate struct {
	mu      sync.Mutex
	max     int // upper bound of limit (workers.max)
	limit   int // handlers allowed to run at once
	running int
	waiters []chan struct{} // FIFO; a channel is closed when its holder is let in
	last    time.Time
	sample  [1]metrics.Sample
	prev    []uint64 // cumulative histogram counts at the last look
	slowIdx int      // first bucket whose lower bound is >= schedSlow
	calm    int      // calm looks in a row with handlers waiting
}

func newCPUGate(max int) *cpuGate {
	if max < 1 {
		max = 1
	}
	g := &cpuGate{max: max, limit: max, slowIdx: -1}
	g.sample[0].Name = "/sched/latencies:seconds"
	return g
}

// acquire waits until the handler may run, or ctx ends.
func (g *cpuGate) acquire(ctx context.Context) error {
	g.mu.Lock()
	g.lookLocked()
	if g.running < g.limit && len(g.waiters) == 0 {
		g.running++
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.waiters = append(g.waiters, ch)
	g.mu.Unlock()
	select {
	case <-ch:
		// Let in by release, this goroutine took the releasing goroutine's P at once (the
		// scheduler's runnext) and would share its time slice: yield, so the goroutines
		// already waiting for a CPU (event goroutines with pings to answer) go first.
		runtime.Gosched()
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		for i, w := range g.waiters {
			if w == ch {
				g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
				g.mu.Unlock()
				return ctx.Err()
			}
		}
		g.mu.Unlock()
		g.release() // let in just as ctx ended: give the slot back
		return ctx.Err()
	}
}

// release ends a handler let in by acquire.
func (g *cpuGate) release() {
	g.mu.Lock()
	g.running--
	g.lookLocked()
	g.admitLocked()
	g.mu.Unlock()
}

func (g *cpuGate) admitLocked() {
	for g.running < g.limit && len(g.waiters) > 0 {
		close(g.waiters[0])
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
		g.running++
	}
}

// lookLocked adapts limit to the scheduling latency seen since the last look.
func (g *cpuGate) lookLocked() {
	now := time.Now()
	if now.Sub(g.last) < gateInterval {
		return
	}
	g.last = now
	metrics.Read(g.sample[:])
	if g.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return
	}
	h := g.sample[0].Value.Float64Histogram()
	if g.slowIdx < 0 || len(g.prev) != len(h.Counts) {
		g.slowIdx = len(h.Counts)
		for i := range h.Counts {
			if h.Buckets[i] >= schedSlow.Seconds() {
				g.slowIdx = i
				break
			}
		}
		g.prev = append(g.prev[:0], h.Counts...)
		return
	}
	var total, slow uint64
	for i, c := range h.Counts {
		d := c - g.prev[i]
		total += d
		if i >= g.slowIdx {
			slow += d
		}
	}
	if total < gateMinEvents {
		return // too few to judge: keep counting from the same baseline
	}
	copy(g.prev, h.Counts)
	g.adjustLocked(total, slow)
}

// adjustLocked moves the bound after a look that saw total scheduling events, slow of them
// slower than schedSlow.
func (g *cpuGate) adjustLocked(total, slow uint64) {
	switch {
	case float64(slow) > schedSlowFrac*float64(total):
		g.limit = max(1, min(g.limit, g.running)/2)
		g.calm = 0
	case float64(slow) <= schedSlowFrac/4*float64(total) && len(g.waiters) > 0:
		// Grow only after gateCalmLooks calm looks in a row, and by a quarter: doubling at
		// once let a CPU-bound backlog in and starved the event goroutines again.
		if g.calm++; g.calm >= gateCalmLooks {
			g.limit = min(g.max, g.limit+max(1, g.limit/4))
			g.calm = 0
			g.admitLocked()
		}
	default:
		g.calm = 0
	}
}

// gateStats reports the gate's bound and occupancy (tests, metrics).
func (g *cpuGate) gateStats() (limit, running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit, g.running, len(g.waiters)
}
