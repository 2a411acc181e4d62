package server

import (
	"context"
	"errors"
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
		waitUntil(t, func() bool { _, _, w := g.gateStats(); return w == i })
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
	waitUntil(t, func() bool { _, _, w := g.gateStats(); return w == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	g.release()
	if _, running, waiting := g.gateStats(); running != 0 || waiting != 0 {
		t.Fatalf("running %d waiting %d: a cancelled waiter kept a slot", running, waiting)
	}
}

// CPU-bound work from more goroutines than CPUs drives the bound down; it never drops
// below one, and every acquire is matched.
func TestCPUGateAdaptsToCPUPressure(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU for ~1s")
	}
	g := newCPUGate(64)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan struct{})
	for range 64 {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				if g.acquire(ctx) != nil {
					return
				}
				_ = burnCPU(context.Background(), 2*time.Millisecond)
				g.release()
			}
		}()
	}
	// This goroutine plays the event goroutines: it wakes every 200µs and measures the gate.
	minLimit := 64
	for ctx.Err() == nil {
		if l, _, _ := g.gateStats(); l < minLimit {
			minLimit = l
		}
		time.Sleep(200 * time.Microsecond)
	}
	for range 64 {
		<-done
	}
	if minLimit >= 64 || minLimit < 1 {
		t.Fatalf("limit stayed within [%d, 64] under 64 CPU-bound goroutines", minLimit)
	}
	if _, running, waiting := g.gateStats(); running != 0 || waiting != 0 {
		t.Fatalf("running %d waiting %d at the end", running, waiting)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
