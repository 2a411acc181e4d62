// Package pool holds the memory helpers shared by the transport layers:
// a size-class byte-buffer pool and a bounded worker pool for slow handlers.
//
// Buffers:
//
//	b := pool.Get(512) // len 0, cap >= 512
//	b.B = append(b.B, data...)
//	...
//	b.Release() // b must not be used after this
//
// Workers:
//
//	w := pool.NewWorkers(pool.WorkersConfig{}) // 256 workers, 4096 queued tasks
//	if err := w.Submit(func() { slow() }); err != nil { /* ErrFull: shed load */ }
//	_ = w.Shutdown(ctx)
package pool

// noCopy may be embedded into structs which must not be copied after first
// use; `go vet` (copylocks) reports copies.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
