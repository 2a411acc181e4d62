package limits

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newRL(t testing.TB, cfg RateLimitConfig) *RateLimiter {
	t.Helper()
	rl, err := NewRateLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rl.Close)
	return rl
}

// TestSeedCurlLoop is the seed's check: 1100 sequential requests from a fresh client give
// exactly 1000 admitted and 100 refused, at any pace that fits in a minute.
func TestSeedCurlLoop(t *testing.T) {
	for _, gap := range []time.Duration{time.Millisecond, 3 * time.Millisecond, 20 * time.Millisecond, 54 * time.Millisecond} {
		t.Run("gap="+gap.String(), func(t *testing.T) {
			rl := newRL(t, RateLimitConfig{})
			ok, refused := 0, 0
			now := t0
			for i := 0; i < 1100; i++ {
				if a, retry := rl.Allow("10.0.0.1", now); a {
					ok++
				} else {
					refused++
					if retry <= 0 || retry > time.Minute {
						t.Fatalf("request %d: retryAfter %v, want in (0, 1m]", i, retry)
					}
				}
				now = now.Add(gap)
			}
			if ok != 1000 || refused != 100 {
				t.Fatalf("admitted %d refused %d, want 1000 and 100", ok, refused)
			}
		})
	}
}

func TestRateLimiterSemantics(t *testing.T) {
	type step struct {
		at     time.Duration // since t0
		n      int           // requests at that instant
		wantOK int
		retry  time.Duration // expected retryAfter of the last refusal (0: don't check)
		scope  Scope
	}
	cases := []struct {
		name  string
		cfg   RateLimitConfig
		steps []step
	}{
		{"burst at one instant", RateLimitConfig{}, []step{
			{0, 150, 100, time.Millisecond + 1, ScopeBurst},
			{100 * time.Millisecond, 150, 100, 0, ScopeBurst},
		}},
		{"window reopens after a minute", RateLimitConfig{RequestsPerMinute: 10, MaxBurst: -1}, []step{
			{0, 15, 10, time.Minute, ScopeKey},
			{30 * time.Second, 5, 0, 30 * time.Second, ScopeKey},
			{60 * time.Second, 15, 10, time.Minute, ScopeKey},
		}},
		{"refusals do not count", RateLimitConfig{RequestsPerMinute: 5, MaxBurst: -1}, []step{
			{0, 1000, 5, 0, ScopeKey},
			{time.Minute, 5, 5, 0, ScopeNone},
		}},
		{"clock going backwards starts a window", RateLimitConfig{RequestsPerMinute: 3, MaxBurst: -1}, []step{
			{time.Hour, 5, 3, 0, ScopeKey},
			{0, 3, 3, 0, ScopeNone},
		}},
		{"unlimited", RateLimitConfig{RequestsPerMinute: -1, MaxBurst: -1}, []step{
			{0, 5000, 5000, 0, ScopeNone},
		}},
		{"global", RateLimitConfig{RequestsPerMinute: -1, MaxBurst: -1, GlobalRequestsPerMinute: 7}, []step{
			{0, 10, 7, time.Minute, ScopeGlobal},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rl := newRL(t, tc.cfg)
			for i, st := range tc.steps {
				ok := 0
				var lastRetry time.Duration
				var lastScope Scope
				for j := 0; j < st.n; j++ {
					a, retry, sc := rl.Check("k", t0.Add(st.at))
					if a {
						ok++
					} else {
						lastRetry, lastScope = retry, sc
						if retry <= 0 {
							t.Fatalf("step %d: refusal with retryAfter %v", i, retry)
						}
					}
				}
				if ok != st.wantOK {
					t.Fatalf("step %d: admitted %d, want %d", i, ok, st.wantOK)
				}
				if st.retry != 0 && lastRetry != st.retry {
					t.Fatalf("step %d: retryAfter %v, want %v", i, lastRetry, st.retry)
				}
				if st.scope != ScopeNone && lastScope != st.scope {
					t.Fatalf("step %d: scope %v, want %v", i, lastScope, st.scope)
				}
			}
		})
	}
}

func TestRateLimiterKeysIndependent(t *testing.T) {
	rl := newRL(t, RateLimitConfig{RequestsPerMinute: 2, MaxBurst: -1})
	for _, k := range []string{"a", "b", "", strings.Repeat("x", 10000), "\x00\xff"} {
		for i := 0; i < 2; i++ {
			if ok, _ := rl.Allow(k, t0); !ok {
				t.Fatalf("key %.10q request %d refused", k, i)
			}
		}
		if ok, _ := rl.Allow(k, t0); ok {
			t.Fatalf("key %.10q: third request admitted", k)
		}
	}
	// Long keys are stored hashed, not whole.
	rl.Forget(strings.Repeat("x", 10000))
	if ok, _ := rl.Allow(strings.Repeat("x", 10000), t0); !ok {
		t.Fatal("forgotten long key still limited")
	}
}

func TestRateLimiterCleanupAndMaxKeys(t *testing.T) {
	rl := newRL(t, RateLimitConfig{RequestsPerMinute: 1, MaxBurst: -1, MaxKeys: rateShards})
	for i := 0; i < 5000; i++ {
		rl.Allow("k"+strconv.Itoa(i), t0)
	}
	if n := rl.Len(); n > rateShards {
		t.Fatalf("%d buckets kept, want ≤ %d (MaxKeys)", n, rateShards)
	}
	if n := rl.Cleanup(t0.Add(30 * time.Second)); n != 0 {
		t.Fatalf("cleanup dropped %d live buckets", n)
	}
	if n := rl.Cleanup(t0.Add(time.Minute)); n == 0 || rl.Len() != 0 {
		t.Fatalf("cleanup after a window dropped %d, %d left", n, rl.Len())
	}
	// A full shard drops its stale buckets to make room.
	for i := 0; i < 5000; i++ {
		rl.Allow("k"+strconv.Itoa(i), t0.Add(2*time.Minute))
	}
	if ok, _ := rl.Allow("fresh", t0.Add(4*time.Minute)); !ok {
		t.Fatal("new key refused although the full shard held only stale buckets")
	}
}

func TestRateLimiterOnRejected(t *testing.T) {
	rl := newRL(t, RateLimitConfig{RequestsPerMinute: 1, MaxBurst: -1})
	var n atomic.Int64
	rl.OnRejected(func(Scope) { n.Add(1) })
	for i := 0; i < 4; i++ {
		rl.Allow("k", t0)
	}
	if n.Load() != 3 {
		t.Fatalf("OnRejected called %d times, want 3", n.Load())
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	rl := newRL(t, RateLimitConfig{RequestsPerMinute: 500, MaxBurst: -1})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if a, _ := rl.Allow("shared", time.Now()); a {
					ok.Add(1)
				}
				rl.Allow("k"+strconv.Itoa(i), time.Now())
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 500 {
		t.Fatalf("admitted %d of 1600 concurrent requests for one key, want exactly 500", ok.Load())
	}
}

func TestRateLimitConfigValidate(t *testing.T) {
	for _, c := range []RateLimitConfig{{BurstInterval: -1}, {CleanupInterval: -1}, {MaxKeys: -1}} {
		if _, err := NewRateLimiter(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestAllowNoAllocs(t *testing.T) {
	rl := newRL(t, RateLimitConfig{RequestsPerMinute: -1})
	key := "10.1.2.3"
	rl.Allow(key, t0)
	now := t0
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		rl.Allow(key, now)
	}); n != 0 {
		t.Fatalf("Allow for an existing key allocates %.1f times", n)
	}
}

func TestRateLimiterSetLimits(t *testing.T) {
	rl := newRL(t, RateLimitConfig{RequestsPerMinute: 2, MaxBurst: -1})
	for i := 0; i < 3; i++ {
		rl.Allow("k", t0)
	}
	if err := rl.SetLimits(RateLimitConfig{RequestsPerMinute: 5, MaxBurst: -1}); err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i := 0; i < 5; i++ {
		if a, _ := rl.Allow("k", t0.Add(time.Second)); a {
			ok++
		}
	}
	if ok != 3 || rl.Config().RequestsPerMinute != 5 || rl.Config().CleanupInterval != DefaultCleanupInterval {
		t.Fatalf("after raising the quota from 2 to 5 mid-window: %d more admitted, want 3; %+v", ok, rl.Config())
	}
	if err := rl.SetLimits(RateLimitConfig{BurstInterval: -1}); err == nil {
		t.Fatal("bad limits accepted")
	}
}
