package server

import (
	"testing"
	"time"
)

func TestCoarseClock(t *testing.T) {
	before := time.Now().Unix()
	got := coarseAt(monoNow())
	after := time.Now().Unix()
	if got < before-1 || got > after {
		t.Fatalf("coarseAt = %d, wall clock %d..%d", got, before, after)
	}
	w := wall.Load()
	if coarseAt(w.mono+1) != w.unix || wall.Load() != w {
		t.Fatal("a stamp younger than wallRefresh was not reused")
	}
	coarseAt(w.mono + wallRefresh)
	if wall.Load() == w {
		t.Fatal("a stamp as old as wallRefresh was reused")
	}
	start := monoNow()
	time.Sleep(20 * time.Millisecond)
	if d := sinceMono(start); d < 20*time.Millisecond || d > 5*time.Second {
		t.Fatalf("sinceMono after a 20ms sleep = %v", d)
	}
}
