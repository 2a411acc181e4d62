package limits

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Rate limiter defaults, from the seed checklist (section 5.3).
const (
	DefaultRequestsPerMinute = 1000
	DefaultMaxBurst          = 100
	DefaultCleanupInterval   = 60 * time.Second
	// DefaultBurstInterval is the time in which a key may spend MaxBurst requests at once:
	// the burst bucket refills MaxBurst tokens per DefaultBurstInterval. 100 ms means a
	// ceiling of 10×MaxBurst requests per second (1000/s with the defaults), far above
	// what a sequential client (curl in a shell loop: ~2–5 ms a request) can reach.
	DefaultBurstInterval = 100 * time.Millisecond
	// DefaultMaxKeys bounds the buckets kept (about 100 bytes each, so ~100 MiB at the
	// default); see RateLimitConfig.MaxKeys.
	DefaultMaxKeys = 1 << 20
)

// window is the quota window: requests_per_minute counts requests per minute.
const window = time.Minute

// RateLimitConfig configures a RateLimiter. The zero value of every field is its default;
// RequestsPerMinute < 0 disables per-key limiting. Field names follow the seed's
// rate_limiter section.
type RateLimitConfig struct {
	// RequestsPerMinute is each key's quota per one-minute window (seed
	// max_requests_per_minute). If zero, DefaultRequestsPerMinute; negative: unlimited.
	RequestsPerMinute int `json:"max_requests_per_minute"`
	// MaxBurst is how many requests a key may make back to back within one BurstInterval
	// (seed max_burst). If zero, DefaultMaxBurst; negative: no burst bound.
	MaxBurst int `json:"max_burst"`
	// BurstInterval is the refill period of the burst bucket. If zero, DefaultBurstInterval.
	BurstInterval time.Duration `json:"burst_interval"`
	// GlobalRequestsPerMinute bounds all keys together, per window. If zero or negative:
	// no global limit (the default: per-key limits and the memory guard protect the server).
	GlobalRequestsPerMinute int `json:"global_max_requests_per_minute"`
	// CleanupInterval is how often buckets idle for a full window are dropped (seed
	// cleanup_interval_ms). If zero, DefaultCleanupInterval.
	CleanupInterval time.Duration `json:"cleanup_interval"`
	// MaxKeys bounds the number of buckets kept. When a shard is full, stale buckets of that
	// shard are dropped at once; if it is still full, new keys share one overflow bucket per
	// shard (limited like one key), so a flood of made-up keys cannot grow memory. If zero,
	// DefaultMaxKeys.
	MaxKeys int `json:"max_keys"`
}

// Validate reports the first bad field.
func (c *RateLimitConfig) Validate() error {
	switch {
	case c.BurstInterval < 0:
		return fmt.Errorf("limits: rate limiter burst_interval %v must be ≥ 0", c.BurstInterval)
	case c.CleanupInterval < 0:
		return fmt.Errorf("limits: rate limiter cleanup_interval %v must be ≥ 0", c.CleanupInterval)
	case c.MaxKeys < 0:
		return fmt.Errorf("limits: rate limiter max_keys %d must be ≥ 0", c.MaxKeys)
	}
	return nil
}

func (c RateLimitConfig) withDefaults() RateLimitConfig {
	if c.RequestsPerMinute == 0 {
		c.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if c.MaxBurst == 0 {
		c.MaxBurst = DefaultMaxBurst
	}
	if c.BurstInterval == 0 {
		c.BurstInterval = DefaultBurstInterval
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultCleanupInterval
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	return c
}

// ErrRateLimited is the error Check returns for a refused request (errors.Is works on it).
var ErrRateLimited = errors.New("limits: rate limit exceeded")

// Scope tells which limit refused a request.
type Scope uint8

const (
	// ScopeNone: the request was admitted.
	ScopeNone Scope = iota
	// ScopeKey: the key's per-minute quota is spent.
	ScopeKey
	// ScopeBurst: the key made more than MaxBurst requests within BurstInterval.
	ScopeBurst
	// ScopeGlobal: all keys together spent the global quota.
	ScopeGlobal
)

// String names the scope as used in error data and logs.
func (s Scope) String() string {
	switch s {
	case ScopeKey:
		return "max_requests_per_minute"
	case ScopeBurst:
		return "max_burst"
	case ScopeGlobal:
		return "global_max_requests_per_minute"
	}
	return "none"
}

// bucket is one key's state. All times are Unix nanoseconds from the caller's clock.
type bucket struct {
	winStart int64   // start of the current quota window; 0: no window open
	count    int64   // requests admitted in the current window
	tokens   float64 // burst tokens left
	last     int64   // last refill of the burst bucket, and last use
}

// admit applies the quota window and the burst bucket to one request at now. Both must
// have room; a refusal consumes nothing.
func (b *bucket) admit(now, perWin, burst int64, burstEvery time.Duration) (ok bool, retry time.Duration, scope Scope) {
	if b.winStart == 0 || now-b.winStart >= int64(window) || now < b.winStart {
		// A window opens at the key's first request after the previous one closed; a
		// clock that went backwards also starts a fresh one rather than blocking forever.
		b.winStart, b.count = now, 0
	}
	if perWin > 0 && b.count >= perWin {
		return false, time.Duration(b.winStart + int64(window) - now), ScopeKey
	}
	if burst > 0 {
		if b.last == 0 {
			b.tokens = float64(burst)
		} else if el := now - b.last; el > 0 {
			b.tokens += float64(el) * float64(burst) / float64(burstEvery)
			if b.tokens > float64(burst) {
				b.tokens = float64(burst)
			}
		}
		b.last = now
		if b.tokens < 1 {
			need := (1 - b.tokens) * float64(burstEvery) / float64(burst)
			return false, time.Duration(need) + 1, ScopeBurst
		}
		b.tokens--
	} else {
		b.last = now
	}
	b.count++
	return true, 0, ScopeNone
}

// stale reports whether the bucket holds nothing a fresh one would not: its window is
// over and its burst bucket has refilled.
func (b *bucket) stale(now int64, burstEvery time.Duration) bool {
	return now-b.winStart >= int64(window) && now-b.last >= int64(burstEvery)
}

const rateShards = 256

// maxKeyLen is the longest key stored as is; longer keys are stored as their hash.
const maxKeyLen = 256

type rateShard struct {
	mu       sync.Mutex
	buckets  map[string]*bucket
	overflow bucket // shared by new keys while the shard is full
	_        [40]byte
}

// RateLimiter limits requests per key (auth subject, session or remote IP: the caller
// chooses) and in total. Semantics, with N = RequestsPerMinute and B = MaxBurst:
//
//   - Quota: a key may make N requests per window of one minute. The window opens at the
//     key's first request (not at wall-clock minutes) and closes one minute later; the
//     next request opens a new one. Refusals do not count. So a fresh key making 1100
//     requests within a minute gets exactly N admitted and 1100−N refused, however fast
//     or slow it goes (the seed's curl loop: 1000 × 200, 100 × 429).
//   - Burst: within the window, a key may make at most B requests back to back; its burst
//     bucket (capacity B) refills B tokens per BurstInterval (100 ms). This bounds how
//     fast a key may spend its quota (≤ 10·B/s = 1000/s at the defaults: N requests take
//     at least N/(10·B) s = 1 s) without touching sequential clients.
//   - Global: when GlobalRequestsPerMinute is set, all keys share one more window.
//
// A refused request learns when to retry: the end of the key's window, or the time until
// its next burst token. Allow is safe for concurrent use; keys are spread over 256 shards,
// each with its own lock, and the hit path for an existing key does not allocate.
type RateLimiter struct {
	cfg        RateLimitConfig                 // as created; CleanupInterval and MaxKeys stay
	cur        atomic.Pointer[RateLimitConfig] // limits in effect; SetLimits swaps it
	seed       maphash.Seed
	shards     [rateShards]rateShard
	perShard   int
	global     bucket
	globalMu   sync.Mutex
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
	onRejected func(Scope)
}

// NewRateLimiter returns a RateLimiter configured by cfg (copied) and starts its cleanup
// goroutine; Close stops it.
func NewRateLimiter(cfg RateLimitConfig) (*RateLimiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	rl := &RateLimiter{cfg: cfg, seed: maphash.MakeSeed(), stop: make(chan struct{})}
	rl.cur.Store(&cfg)
	rl.perShard = max(cfg.MaxKeys/rateShards, 1)
	for i := range rl.shards {
		rl.shards[i].buckets = make(map[string]*bucket)
	}
	rl.wg.Add(1)
	go rl.cleanupLoop()
	return rl, nil
}

// Config returns the configuration in effect (defaults filled in).
func (rl *RateLimiter) Config() RateLimitConfig { return *rl.cur.Load() }

// SetLimits changes RequestsPerMinute, MaxBurst, BurstInterval and GlobalRequestsPerMinute
// of a running limiter (`erlmcp reload`); zero fields take their defaults as in
// NewRateLimiter. Buckets are kept: a key's current window counts against the new quota.
// CleanupInterval and MaxKeys keep their values from NewRateLimiter.
func (rl *RateLimiter) SetLimits(cfg RateLimitConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	cfg.CleanupInterval, cfg.MaxKeys = rl.cfg.CleanupInterval, rl.cfg.MaxKeys
	rl.cur.Store(&cfg)
	return nil
}

// OnRejected sets a function called (synchronously, so it must be cheap) for every refused
// request, e.g. to count erlmcp_rate_limited_total. Set it before first use.
func (rl *RateLimiter) OnRejected(f func(Scope)) { rl.onRejected = f }

// Allow admits or refuses one request of key at now. When refused, retryAfter is how long
// the key should wait (always > 0). An empty key is limited like any other.
func (rl *RateLimiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	ok, retryAfter, _ = rl.Check(key, now)
	return ok, retryAfter
}

// Check is Allow that also tells which limit refused the request.
func (rl *RateLimiter) Check(key string, now time.Time) (ok bool, retryAfter time.Duration, scope Scope) {
	ns := now.UnixNano()
	c := rl.cur.Load()
	if c.RequestsPerMinute > 0 || c.MaxBurst > 0 {
		h := maphash.String(rl.seed, key)
		if len(key) > maxKeyLen {
			// A hostile caller-controlled key (a made-up session id) must not be stored at
			// any length: long keys are kept as their 64-bit hash.
			key = "#" + strconv.FormatUint(h, 36)
		}
		sh := &rl.shards[h%rateShards]
		sh.mu.Lock()
		b := sh.buckets[key]
		if b == nil {
			b = rl.newBucketLocked(sh, key, ns)
		}
		ok, retryAfter, scope = b.admit(ns, int64(c.RequestsPerMinute), int64(c.MaxBurst), c.BurstInterval)
		sh.mu.Unlock()
	} else {
		ok = true
	}
	if ok && c.GlobalRequestsPerMinute > 0 {
		rl.globalMu.Lock()
		ok, retryAfter, scope = rl.global.admit(ns, int64(c.GlobalRequestsPerMinute), 0, c.BurstInterval)
		rl.globalMu.Unlock()
		if !ok {
			scope = ScopeGlobal
		}
	}
	if !ok && rl.onRejected != nil {
		rl.onRejected(scope)
	}
	return ok, retryAfter, scope
}

// newBucketLocked adds a bucket for key, or returns the shard's overflow bucket when the
// shard is full even after dropping its stale buckets. sh.mu must be held.
func (rl *RateLimiter) newBucketLocked(sh *rateShard, key string, now int64) *bucket {
	if len(sh.buckets) >= rl.perShard {
		rl.sweepLocked(sh, now)
		if len(sh.buckets) >= rl.perShard {
			return &sh.overflow
		}
	}
	b := &bucket{}
	sh.buckets[string([]byte(key))] = b // own the key: callers may pass aliased strings
	return b
}

func (rl *RateLimiter) sweepLocked(sh *rateShard, now int64) int {
	n := 0
	for k, b := range sh.buckets {
		if b.stale(now, rl.cur.Load().BurstInterval) {
			delete(sh.buckets, k)
			n++
		}
	}
	return n
}

// Cleanup drops buckets idle for at least a window at now and returns how many; the
// cleanup goroutine calls it every CleanupInterval. A dropped key starts fresh.
func (rl *RateLimiter) Cleanup(now time.Time) int {
	ns, n := now.UnixNano(), 0
	for i := range rl.shards {
		sh := &rl.shards[i]
		sh.mu.Lock()
		n += rl.sweepLocked(sh, ns)
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of buckets kept.
func (rl *RateLimiter) Len() int {
	n := 0
	for i := range rl.shards {
		sh := &rl.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

// Forget drops key's bucket (e.g. when a session closes and the key was its id).
func (rl *RateLimiter) Forget(key string) {
	h := maphash.String(rl.seed, key)
	if len(key) > maxKeyLen {
		key = "#" + strconv.FormatUint(h, 36)
	}
	sh := &rl.shards[h%rateShards]
	sh.mu.Lock()
	delete(sh.buckets, key)
	sh.mu.Unlock()
}

func (rl *RateLimiter) cleanupLoop() {
	defer rl.wg.Done()
	t := time.NewTicker(rl.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-rl.stop:
			return
		case now := <-t.C:
			rl.Cleanup(now)
		}
	}
}

// Close stops the cleanup goroutine. Allow keeps working. Idempotent.
func (rl *RateLimiter) Close() {
	rl.stopOnce.Do(func() { close(rl.stop) })
	rl.wg.Wait()
}
