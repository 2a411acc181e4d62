package pool

import (
	"testing"
)

func TestGetCapacity(t *testing.T) {
	f := func(n, wantCap int) {
		t.Helper()
		b := Get(n)
		if len(b.B) != 0 || cap(b.B) != wantCap {
			t.Fatalf("Get(%d): len=%d cap=%d, want len=0 cap=%d", n, len(b.B), cap(b.B), wantCap)
		}
		b.Release()
	}
	f(0, 256)
	f(1, 256)
	f(256, 256)
	f(257, 512)
	f(4096, 4096)
	f(4097, 8192)
	f(MaxPooled, MaxPooled)
	f(MaxPooled+1, MaxPooled+1)
}

func TestReleaseResets(t *testing.T) {
	b := Get(300)
	b.B = append(b.B, "hello"...)
	b.Release()
	for i := 0; i < 10; i++ {
		b := Get(300)
		if len(b.B) != 0 {
			t.Fatalf("pooled buffer not reset: len %d", len(b.B))
		}
		b.Release()
	}
}

func TestReleaseGrownBuffer(t *testing.T) {
	b := Get(256)
	b.B = append(b.B, make([]byte, 1000)...) // grows to a non power of two cap
	b.Release()
	for i := 0; i < 20; i++ {
		g := Get(512)
		if cap(g.B) < 512 {
			t.Fatalf("Get(512) returned cap %d", cap(g.B))
		}
		g.Release()
	}
}

func TestOversizeDropped(t *testing.T) {
	b := Get(MaxPooled * 2)
	b.Release()
	if b.B != nil {
		t.Fatalf("oversize buffer kept: cap %d", cap(b.B))
	}
}
