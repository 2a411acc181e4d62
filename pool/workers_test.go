package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorkersRunsAll(t *testing.T) {
	w := NewWorkers(WorkersConfig{Max: 8, Queue: 1000})
	var n atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		for {
			err := w.Submit(func() { n.Add(1); wg.Done() })
			if err == nil {
				break
			}
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if n.Load() != 500 {
		t.Fatalf("ran %d tasks, want 500", n.Load())
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWorkersFull(t *testing.T) {
	w := NewWorkers(WorkersConfig{Max: 2, Queue: 3})
	block := make(chan struct{})
	for i := 0; i < 5; i++ { // 2 running + 3 queued
		if err := w.Submit(func() { <-block }); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	if running, queued := w.Stats(); running != 2 || queued != 3 {
		t.Fatalf("Stats = %d running, %d queued; want 2, 3", running, queued)
	}
	if err := w.Submit(func() {}); !errors.Is(err, ErrFull) {
		t.Fatalf("Submit on full pool = %v, want ErrFull", err)
	}
	close(block)
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWorkersShutdownDrains(t *testing.T) {
	w := NewWorkers(WorkersConfig{Max: 2, Queue: 10})
	var done atomic.Int64
	for i := 0; i < 10; i++ {
		if err := w.Submit(func() { time.Sleep(10 * time.Millisecond); done.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 10 {
		t.Fatalf("Shutdown returned with %d of 10 tasks done", done.Load())
	}
	if err := w.Submit(func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Shutdown = %v, want ErrClosed", err)
	}
	if err := w.Shutdown(context.Background()); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestWorkersShutdownTimeout(t *testing.T) {
	w := NewWorkers(WorkersConfig{Max: 1})
	block := make(chan struct{})
	defer close(block)
	if err := w.Submit(func() { <-block }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
}

func TestWorkersIdleExit(t *testing.T) {
	w := NewWorkers(WorkersConfig{Max: 4, IdleTimeout: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		if err := w.Submit(func() { time.Sleep(5 * time.Millisecond); wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for {
		w.mu.Lock()
		n := w.running
		w.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still alive after idle timeout", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The pool still works after all workers left.
	ch := make(chan struct{})
	if err := w.Submit(func() { close(ch) }); err != nil {
		t.Fatal(err)
	}
	<-ch
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWorkersConcurrentSubmitShutdown(t *testing.T) {
	w := NewWorkers(WorkersConfig{Max: 4, Queue: 16, IdleTimeout: time.Millisecond})
	var ran, accepted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if w.Submit(func() { ran.Add(1) }) == nil {
					accepted.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ran.Load() != accepted.Load() {
		t.Fatalf("accepted %d tasks but ran %d", accepted.Load(), ran.Load())
	}
}
