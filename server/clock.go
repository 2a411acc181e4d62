package server

import (
	"sync/atomic"
	"time"
)

// Request timing reads the clock as little as possible: on the reference VM every clock
// read costs ~80 ns (time.Now takes two, wall and monotonic: 171 ns), which was a tenth
// of the server's CPU per pipelined tools/call. A request reads the monotonic clock once
// when it arrives and once when it is answered; the unix second kept as a session's
// lastActive comes from a wall-clock stamp refreshed at most every wallRefresh.

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow returns monotonic nanoseconds since monoEpoch, with one clock read.
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// wallRefresh bounds how stale coarseAt's unix second may be.
const wallRefresh = int64(100 * time.Millisecond)

// wallStamp pairs a wall-clock unix second with the monoNow it was read at.
type wallStamp struct{ mono, unix int64 }

var wall atomic.Pointer[wallStamp]

// coarseAt returns the current unix second, given mono = monoNow(): the cached stamp
// when it is younger than wallRefresh, else a fresh time.Now.
func coarseAt(mono int64) int64 {
	if w := wall.Load(); w != nil && mono-w.mono < wallRefresh && mono >= w.mono {
		return w.unix
	}
	now := time.Now()
	wall.Store(&wallStamp{mono: int64(now.Sub(monoEpoch)), unix: now.Unix()})
	return now.Unix()
}

// sinceMono returns the time elapsed since start, a monoNow value.
func sinceMono(start int64) time.Duration { return time.Duration(monoNow() - start) }
