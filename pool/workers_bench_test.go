package pool

import (
	"sync"
	"testing"
)

func BenchmarkWorkersSubmit(b *testing.B) {
	w := NewWorkers(WorkersConfig{Max: 64, Queue: 1 << 16})
	b.ReportAllocs()
	var wg sync.WaitGroup
	task := func() { wg.Done() }
	for b.Loop() {
		wg.Add(1)
		for w.Submit(task) != nil {
		}
	}
	wg.Wait()
	_ = w.Shutdown(b.Context())
}
