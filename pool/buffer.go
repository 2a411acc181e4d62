package pool

import (
	"math/bits"
	"sync"
)

const (
	minClassShift = 8  // 256 B: smaller requests still get 256 B; below that the Buffer header dominates.
	maxClassShift = 22 // 4 MiB: bigger buffers are rare (huge frames) and caching them pins memory
	// for no throughput gain (VictoriaMetrics leveledbytebufferpool makes the same call).
	numClasses = maxClassShift - minClassShift + 1

	// MaxPooled is the largest capacity kept by the pool; larger buffers are
	// allocated on demand and dropped by Release.
	MaxPooled = 1 << maxClassShift
)

// Buffer is a pooled byte slice. B has len 0 and cap >= the requested size
// when returned by Get; append to it freely (if append grows B past its class
// the grown slice is pooled under its new class on Release, or dropped when
// it exceeds MaxPooled).
//
// A Buffer must not be copied (it embeds noCopy) and must not be used after
// Release.
type Buffer struct {
	noCopy noCopy
	// B holds the data. Its contents are valid until Release.
	B []byte
}

// classes[i] pools *Buffer whose cap(B) is exactly 1<<(i+minClassShift).
//
// Why sync.Pool per class and not our own per-P shards: sync.Pool already
// keeps a per-P private slot plus a per-P lock-free shared chain, and it is
// the only code that can pin to a P (runtime_procPin is not exported). A
// hand-rolled "cheap per-P-ish index" over mutex-protected stacks measured
// slower even with a perfect one-shard-per-goroutine pick: on this 2-CPU box
// BenchmarkGetRelease/size=4096/parallel ~5.6-10 ns/op vs BenchmarkMutexShards
// ~11 ns/op, both 0 allocs. sync.Pool also returns memory to
// the GC across two cycles, which is what we want for idle servers
// (hibernated connections give their buffers back and the heap shrinks).
var classes [numClasses]sync.Pool

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// Get returns a Buffer with len(B) == 0 and cap(B) >= n. Requests above
// MaxPooled are served with a fresh allocation that Release drops.
// Get is safe for concurrent use.
func Get(n int) *Buffer {
	if n > MaxPooled {
		return &Buffer{B: make([]byte, 0, n)}
	}
	c := classOf(n)
	if v := classes[c].Get(); v != nil {
		return v.(*Buffer)
	}
	return &Buffer{B: make([]byte, 0, 1<<(c+minClassShift))}
}

// Release resets b and returns it to the pool. It is forbidden to access b or
// any slice of b.B after Release: the memory is handed to another Get.
// Buffers whose capacity exceeds MaxPooled (or is not a power of two of at
// least 256 B, which happens only if B was replaced by the caller) are dropped.
func (b *Buffer) Release() {
	c := cap(b.B)
	if c > MaxPooled || c < 1<<minClassShift || c&(c-1) != 0 {
		// An append grew B to a non power of two: pool it under the class it
		// fully covers, so Get(n) still gets cap >= n.
		if c > MaxPooled || c < 1<<minClassShift {
			b.B = nil
			return
		}
		cls := bits.Len(uint(c)) - 1 - minClassShift
		b.B = b.B[: 0 : 1<<(cls+minClassShift)]
		classes[cls].Put(b)
		return
	}
	b.B = b.B[:0]
	classes[bits.Len(uint(c))-1-minClassShift].Put(b)
}
