package pool

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrFull is returned by Workers.Submit when all workers are busy and the
// queue is full. Shed the load (reply "overloaded") or raise
// WorkersConfig.Max / WorkersConfig.Queue.
var ErrFull = errors.New("pool: worker pool full")

// ErrClosed is returned by Workers.Submit after Shutdown has begun.
var ErrClosed = errors.New("pool: worker pool closed")

// WorkersConfig configures a Workers pool. The zero value gives the defaults.
type WorkersConfig struct {
	// Max is the maximum number of worker goroutines. If zero, 256.
	Max int `json:"max"`
	// Queue is how many tasks may wait when all workers are busy. If zero,
	// 4096; negative means no queue (Submit fails with ErrFull at once).
	Queue int `json:"queue"`
	// IdleTimeout is how long an idle worker goroutine waits for a task
	// before it exits. If zero, 10s.
	IdleTimeout time.Duration `json:"idleTimeout"`
}

// Workers is a bounded pool of goroutines for slow handlers. Goroutines are
// started lazily up to Max and exit after IdleTimeout without work, so an idle
// server holds no worker goroutines. All methods are safe for concurrent use.
type Workers struct {
	noCopy noCopy
	cfg    WorkersConfig

	mu      sync.Mutex
	idle    []*worker // idle workers, most recently used last (LIFO keeps hot stacks warm)
	queue   ring      // tasks waiting for a worker
	running int       // worker goroutines alive (busy or idle)
	busy    int       // workers running a task
	closed  bool
	done    chan struct{} // closed when running and queue reach zero after Shutdown
}

type worker struct {
	task chan func() // cap 1; nil task means exit
}

// NewWorkers returns a pool configured by cfg (copied).
func NewWorkers(cfg WorkersConfig) *Workers {
	if cfg.Max <= 0 {
		cfg.Max = 256
	}
	if cfg.Queue == 0 {
		cfg.Queue = 4096
	}
	if cfg.Queue < 0 {
		cfg.Queue = 0
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	return &Workers{cfg: cfg, queue: ring{max: cfg.Queue}, done: make(chan struct{})}
}

// Submit runs task on a worker. It never blocks: it hands the task to an idle
// worker, else starts a new worker if fewer than Max run, else queues it, else
// returns ErrFull. After Shutdown it returns ErrClosed.
func (w *Workers) Submit(task func()) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if n := len(w.idle); n > 0 {
		wk := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.busy++
		w.mu.Unlock()
		wk.task <- task // cap 1 and the worker is parked: never blocks
		return nil
	}
	if w.running < w.cfg.Max {
		w.running++
		w.busy++
		w.mu.Unlock()
		go w.run(&worker{task: make(chan func(), 1)}, task)
		return nil
	}
	if !w.queue.push(task) {
		w.mu.Unlock()
		return ErrFull
	}
	w.mu.Unlock()
	return nil
}

func (w *Workers) run(wk *worker, task func()) {
	timer := time.NewTimer(w.cfg.IdleTimeout)
	defer timer.Stop()
	for {
		task()
		w.mu.Lock()
		if t := w.queue.pop(); t != nil {
			w.mu.Unlock()
			task = t
			continue
		}
		w.busy--
		if w.closed {
			w.exitLocked()
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, wk)
		w.mu.Unlock()

		timer.Reset(w.cfg.IdleTimeout)
		select {
		case task = <-wk.task:
		case <-timer.C:
			w.mu.Lock()
			if w.removeIdleLocked(wk) {
				w.exitLocked()
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			// Submit popped us just before the timer fired: the task is coming.
			task = <-wk.task
		}
		if task == nil { // Shutdown
			w.mu.Lock()
			w.exitLocked()
			w.mu.Unlock()
			return
		}
	}
}

// exitLocked accounts for a worker goroutine leaving. w.mu must be held.
func (w *Workers) exitLocked() {
	w.running--
	if w.closed && w.running == 0 {
		close(w.done)
	}
}

func (w *Workers) removeIdleLocked(wk *worker) bool {
	for i, x := range w.idle {
		if x == wk {
			copy(w.idle[i:], w.idle[i+1:])
			w.idle[len(w.idle)-1] = nil
			w.idle = w.idle[:len(w.idle)-1]
			return true
		}
	}
	return false
}

// Shutdown refuses new tasks and waits until running and queued tasks have
// finished, or ctx is done (then it returns ctx.Err() and the remaining tasks
// still finish in the background). Shutdown may be called more than once.
func (w *Workers) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		for _, wk := range w.idle {
			wk.task <- nil
		}
		w.idle = nil
		if w.running == 0 {
			close(w.done)
		}
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the number of workers running a task and the number of
// tasks waiting in the queue.
func (w *Workers) Stats() (running, queued int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy, w.queue.n
}

// ring is a fixed-capacity FIFO of tasks, allocated on first use.
type ring struct {
	buf     []func()
	head, n int
	max     int
}

func (r *ring) push(t func()) bool {
	if r.n >= r.max {
		return false
	}
	if r.buf == nil {
		r.buf = make([]func(), r.max)
	}
	r.buf[(r.head+r.n)%len(r.buf)] = t
	r.n++
	return true
}

func (r *ring) pop() func() {
	if r.n == 0 {
		return nil
	}
	t := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return t
}
