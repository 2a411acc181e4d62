package pool

import (
	"fmt"
	"sync"
	"testing"
)

func BenchmarkGetRelease(b *testing.B) {
	for _, size := range []int{256, 4096, 65536} {
		b.Run(fmt.Sprintf("size=%d/serial", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				buf := Get(size)
				buf.B = append(buf.B, 'x')
				buf.Release()
			}
		})
		b.Run(fmt.Sprintf("size=%d/parallel", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					buf := Get(size)
					buf.B = append(buf.B, 'x')
					buf.Release()
				}
			})
		})
	}
}

// mutexShards is the alternative design measured against sync.Pool: one
// mutex-protected free list per shard, shard picked by a cheap counter.
type mutexShards struct {
	shards [64]struct {
		sync.Mutex
		free [][]byte
		_    [32]byte
	}
	next uint32
}

func (m *mutexShards) get(n int, i uint32) []byte {
	s := &m.shards[i%64]
	s.Lock()
	if l := len(s.free); l > 0 {
		b := s.free[l-1]
		s.free = s.free[:l-1]
		s.Unlock()
		return b
	}
	s.Unlock()
	return make([]byte, 0, n)
}

func (m *mutexShards) put(b []byte, i uint32) {
	s := &m.shards[i%64]
	s.Lock()
	s.free = append(s.free, b[:0])
	s.Unlock()
}

func BenchmarkMutexShards(b *testing.B) {
	var m mutexShards
	b.ReportAllocs()
	var seq sync.Mutex
	var id uint32
	b.RunParallel(func(pb *testing.PB) {
		seq.Lock()
		id++
		me := id
		seq.Unlock()
		for pb.Next() {
			buf := m.get(4096, me)
			buf = append(buf, 'x')
			m.put(buf, me)
		}
	})
}
