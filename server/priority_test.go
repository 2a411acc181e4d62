package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestCPUGateBoundsAndOrder(t *testing.T) {
	g := newCPUGate(2)
	g.last = time.Now().Add(time.Hour) // no adaptation in this test
	ctx := context.Background()
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var order []int
	var in atomic.Int32
	done := make(chan struct{}, 2)
	for i := 1; i <= 2; i++ {
		go func() {
			_ = g.acquire(ctx)
			in.Add(1)
			order = append(order, i) // serialized: one slot frees at a time below
			done <- struct{}{}
		}()
		waitFor(t, 5*time.Second, fmt.Sprintf("%d waiters at the gate", i), func() bool { _, _, w := g.gateStats(); return w == i })
	}
	if in.Load() != 0 {
		t.Fatal("let in beyond the limit")
	}
	g.release()
	<-done
	g.release()
	<-done
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Fatalf("admission order %v, want FIFO [1 2]", order)
	}
	g.release()
	g.release()
	if _, running, waiting := g.gateStats(); running != 0 || waiting != 0 {
		t.Fatalf("running %d waiting %d after all releases", running, waiting)
	}
}

func TestCPUGateCancelWhileWaiting(t *testing.T) {
	g := newCPUGate(1)
	g.last = time.Now().Add(time.Hour)
	if err := g.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.acquire(ctx) }()
	waitFor(t, 5*time.Second, "1 waiter at the gate", func() bool { _, _, w := g.gateStats(); return w == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	g.release()
	if _, running, waiting := g.gateStats(); running != 0 || waiting != 0 {
		t.Fatalf("running %d waiting %d: a cancelled waiter kept a slot", running, waiting)
	}
}

// The bound halves (from what runs) under pressure, never below one, and grows by a quarter
// only after gateCalmLooks calm looks while handlers wait.
func TestCPUGateAdjust(t *testing.T) {
	g := newCPUGate(64)
	g.running = 40
	g.adjustLocked(100, 2) // 2% slow
	if g.limit != 20 {
		t.Fatalf("limit %d after pressure with 40 running, want 20", g.limit)
	}
	for range 10 {
		g.adjustLocked(100, 50)
	}
	if g.limit != 1 {
		t.Fatalf("limit %d under sustained pressure, want 1", g.limit)
	}
	g.running = 1
	g.waiters = make([]chan struct{}, 3)
	for i := range g.waiters {
		g.waiters[i] = make(chan struct{})
	}
	for range gateCalmLooks - 1 {
		g.adjustLocked(100, 0)
	}
	if g.limit != 1 {
		t.Fatalf("limit grew to %d before %d calm looks", g.limit, gateCalmLooks)
	}
	g.adjustLocked(100, 0)
	if g.limit != 2 || g.running != 2 || len(g.waiters) != 2 {
		t.Fatalf("after calm looks: limit %d running %d waiting %d, want 2 2 2", g.limit, g.running, len(g.waiters))
	}
	g.adjustLocked(100, 1) // between a quarter of the threshold and the threshold: resets calm
	for range gateCalmLooks - 1 {
		g.adjustLocked(100, 0)
	}
	if g.limit != 2 {
		t.Fatalf("limit %d: a non-calm look did not restart the count", g.limit)
	}
}

// The runtime's scheduling-latency histogram is there and has a bucket at schedSlow.
func TestCPUGateReadsSchedLatencies(t *testing.T) {
	g := newCPUGate(4)
	g.mu.Lock()
	g.lookLocked()
	g.mu.Unlock()
	if g.slowIdx <= 0 || g.slowIdx >= len(g.prev) {
		t.Fatalf("slow bucket %d of %d: /sched/latencies:seconds missing or unexpected", g.slowIdx, len(g.prev))
	}
}
