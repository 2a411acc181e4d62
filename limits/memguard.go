package limits

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Memory guard defaults.
const (
	// DefaultMemoryFraction is the share of the cgroup (or machine) memory used as the limit
	// when MemoryGuardConfig.LimitBytes is zero: room is left for the kernel's socket
	// buffers and page cache, which the Go runtime does not see.
	DefaultMemoryFraction = 0.75
	// DefaultHighWater and DefaultLowWater are the marks, as fractions of the limit, at which
	// the guard starts and stops refusing new work. The gap is the hysteresis that keeps it
	// from flapping on every GC cycle.
	DefaultHighWater = 0.85
	DefaultLowWater  = 0.70
	// DefaultSampleInterval is how often the guard reads the runtime's memory statistics.
	// runtime/metrics.Read costs about a microsecond and stops nothing, so ten reads a
	// second are free; per request would not be.
	DefaultSampleInterval = 100 * time.Millisecond
)

// MemoryGuardConfig configures a MemoryGuard. The zero value of every field is its default.
type MemoryGuardConfig struct {
	// LimitBytes is the memory the process may use (seed memory_limit_bytes). It is also set
	// as the Go runtime's soft limit (GOMEMLIMIT) unless KeepGoLimit is set. If zero,
	// DefaultMemoryFraction of the cgroup v2/v1 memory limit, or of MemTotal when not in a
	// memory-limited cgroup (see DetectMemory).
	LimitBytes int64 `json:"memory_limit_bytes"`
	// HighWater and LowWater are fractions of LimitBytes: the guard turns Overloaded when the
	// memory in use reaches HighWater×LimitBytes and Normal again when it falls to
	// LowWater×LimitBytes. If zero, DefaultHighWater and DefaultLowWater.
	HighWater float64 `json:"high_water"`
	LowWater  float64 `json:"low_water"`
	// SampleInterval is the sampling period. If zero, DefaultSampleInterval.
	SampleInterval time.Duration `json:"sample_interval"`
	// KeepGoLimit leaves the runtime's soft memory limit alone (debug.SetMemoryLimit is
	// process-wide; tests running several guards set it).
	KeepGoLimit bool `json:"keep_go_limit"`
	// Sample, if set, replaces the runtime reading (tests). It returns bytes in use.
	Sample func() int64 `json:"-"`
}

// Validate reports the first bad field.
func (c *MemoryGuardConfig) Validate() error {
	switch {
	case c.LimitBytes < 0:
		return fmt.Errorf("limits: memory_limit_bytes %d must be ≥ 0 (0: %.0f%% of the cgroup or machine memory)", c.LimitBytes, DefaultMemoryFraction*100)
	case c.LimitBytes > 0 && c.LimitBytes < 16<<20:
		return fmt.Errorf("limits: memory_limit_bytes %d is below 16 MiB; the Go runtime alone needs more", c.LimitBytes)
	case c.HighWater < 0 || c.HighWater > 1:
		return fmt.Errorf("limits: memory guard high_water %v must be in (0, 1]", c.HighWater)
	case c.LowWater < 0 || c.LowWater > 1:
		return fmt.Errorf("limits: memory guard low_water %v must be in (0, 1]", c.LowWater)
	case c.HighWater > 0 && c.LowWater > 0 && c.LowWater >= c.HighWater:
		return fmt.Errorf("limits: memory guard low_water %v must be below high_water %v", c.LowWater, c.HighWater)
	case c.SampleInterval < 0:
		return fmt.Errorf("limits: memory guard sample_interval %v must be ≥ 0", c.SampleInterval)
	}
	return nil
}

// MemoryState is the guard's state; its numeric value is the erlmcp_memory_guard_state gauge.
type MemoryState int32

const (
	// MemoryNormal: new work is admitted.
	MemoryNormal MemoryState = 0
	// MemoryOverloaded: memory is above the high-water mark; new connections and new work are
	// refused until it falls below the low-water mark.
	MemoryOverloaded MemoryState = 1
)

// String returns "normal" or "overloaded".
func (s MemoryState) String() string {
	if s == MemoryOverloaded {
		return "overloaded"
	}
	return "normal"
}

// MemoryGuard watches the process's memory from one goroutine and tells the request path,
// with one atomic load, whether to admit new work. It is safe for concurrent use.
type MemoryGuard struct {
	cfg       MemoryGuardConfig
	limit     atomic.Int64 // bytes; SetLimit changes it with high and low
	high, low atomic.Int64
	// highFrac and lowFrac are the water marks as fractions of the limit (float64 bits);
	// SetWater changes them while running.
	highFrac, lowFrac atomic.Uint64
	state             atomic.Int32
	inUse             atomic.Int64
	prevLimit         int64

	mu        sync.Mutex // guards callbacks
	callbacks []func(old, new MemoryState)

	samples []metrics.Sample
	lastGC  time.Time // last collection forced while overloaded (sampling goroutine only)
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewMemoryGuard returns a guard configured by cfg (copied), sets the Go soft memory limit,
// takes a first sample and starts sampling. Close stops it and restores the previous limit.
func NewMemoryGuard(cfg MemoryGuardConfig) (*MemoryGuard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.LimitBytes == 0 {
		total, _, err := DetectMemory()
		if err != nil {
			return nil, fmt.Errorf("limits: memory_limit_bytes is 0 and the memory size is unknown (%v); set memory_guard.memory_limit_bytes", err)
		}
		cfg.LimitBytes = int64(float64(total) * DefaultMemoryFraction)
	}
	if cfg.HighWater == 0 {
		cfg.HighWater = DefaultHighWater
	}
	if cfg.LowWater == 0 {
		cfg.LowWater = min(DefaultLowWater, cfg.HighWater*0.8)
	}
	if cfg.LowWater >= cfg.HighWater {
		return nil, fmt.Errorf("limits: memory guard low_water %v must be below high_water %v", cfg.LowWater, cfg.HighWater)
	}
	if cfg.SampleInterval == 0 {
		cfg.SampleInterval = DefaultSampleInterval
	}
	g := &MemoryGuard{
		cfg:  cfg,
		stop: make(chan struct{}),
		samples: []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
		},
	}
	g.highFrac.Store(math.Float64bits(cfg.HighWater))
	g.lowFrac.Store(math.Float64bits(cfg.LowWater))
	g.setMarks(cfg.LimitBytes)
	if !cfg.KeepGoLimit {
		g.prevLimit = debug.SetMemoryLimit(cfg.LimitBytes)
	}
	g.Sample()
	g.wg.Add(1)
	go g.run()
	return g, nil
}

// readRuntime returns the memory the Go runtime uses: everything it mapped minus what it
// returned to the OS and minus free spans it could return at any time (heap objects, live
// or awaiting collection, stacks, runtime metadata). Free spans are left out because with
// a soft limit set the scavenger keeps up to the limit mapped, so counting them would keep
// the guard overloaded long after the memory was freed. Memory outside Go (kernel socket
// buffers) is not seen; the limit's headroom covers it.
func (g *MemoryGuard) readRuntime() int64 {
	metrics.Read(g.samples)
	var v [3]uint64
	for i := range v {
		if g.samples[i].Value.Kind() == metrics.KindUint64 {
			v[i] = g.samples[i].Value.Uint64()
		}
	}
	if v[1]+v[2] > v[0] {
		return 0
	}
	return int64(v[0] - v[1] - v[2])
}

func (g *MemoryGuard) run() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			if g.Sample() == MemoryOverloaded && g.cfg.Sample == nil && time.Since(g.lastGC) >= time.Second {
				// Dead objects count as used until a collection finds them, and an idle
				// server allocates nothing that would start one: collect at most once a
				// second while overloaded, so the guard can see that memory came back.
				g.lastGC = time.Now()
				runtime.GC()
			}
		}
	}
}

// Sample reads the memory in use now and updates the state; the guard's goroutine calls it
// every SampleInterval. It returns the state after the sample.
func (g *MemoryGuard) Sample() MemoryState {
	var used int64
	if g.cfg.Sample != nil {
		used = g.cfg.Sample()
	} else {
		used = g.readRuntime()
	}
	g.inUse.Store(used)
	old := MemoryState(g.state.Load())
	next := old
	switch {
	case old == MemoryNormal && used >= g.high.Load():
		next = MemoryOverloaded
	case old == MemoryOverloaded && used <= g.low.Load():
		next = MemoryNormal
	}
	if next != old && g.state.CompareAndSwap(int32(old), int32(next)) {
		g.mu.Lock()
		cbs := g.callbacks
		g.mu.Unlock()
		for _, f := range cbs {
			f(old, next)
		}
	}
	return next
}

// Admit reports whether new work (a new connection, a new request other than ping or
// cancellation) may start. One atomic load.
func (g *MemoryGuard) Admit() bool { return g.state.Load() == int32(MemoryNormal) }

// State returns the current state; int(State()) is the erlmcp_memory_guard_state gauge.
func (g *MemoryGuard) State() MemoryState { return MemoryState(g.state.Load()) }

// InUse returns the bytes in use at the last sample.
func (g *MemoryGuard) InUse() int64 { return g.inUse.Load() }

// Limit returns the configured limit and the high- and low-water marks in bytes.
func (g *MemoryGuard) Limit() (limit, high, low int64) {
	return g.limit.Load(), g.high.Load(), g.low.Load()
}

func (g *MemoryGuard) setMarks(limit int64) {
	g.limit.Store(limit)
	g.high.Store(int64(float64(limit) * math.Float64frombits(g.highFrac.Load())))
	g.low.Store(int64(float64(limit) * math.Float64frombits(g.lowFrac.Load())))
}

// SetWater changes the high- and low-water marks of a running guard (`erlmcp reload`),
// as fractions of the limit; zero keeps a mark as it is. The next sample applies them.
func (g *MemoryGuard) SetWater(high, low float64) error {
	if high == 0 {
		high = math.Float64frombits(g.highFrac.Load())
	}
	if low == 0 {
		low = math.Float64frombits(g.lowFrac.Load())
	}
	if high <= 0 || high > 1 || low <= 0 || low >= high {
		return fmt.Errorf("limits: memory guard water marks high %v, low %v: want 0 < low < high ≤ 1", high, low)
	}
	g.highFrac.Store(math.Float64bits(high))
	g.lowFrac.Store(math.Float64bits(low))
	g.setMarks(g.limit.Load())
	return nil
}

// SetLimit changes the limit of a running guard (`erlmcp reload`), with the water marks
// at the same fractions, and the Go soft limit unless KeepGoLimit. The next sample applies
// it.
func (g *MemoryGuard) SetLimit(limitBytes int64) error {
	c := MemoryGuardConfig{LimitBytes: limitBytes}
	if err := c.Validate(); err != nil || limitBytes == 0 {
		return fmt.Errorf("limits: memory guard limit %d: must be ≥ 16 MiB", limitBytes)
	}
	g.setMarks(limitBytes)
	if !g.cfg.KeepGoLimit {
		debug.SetMemoryLimit(limitBytes)
	}
	return nil
}

// OnChange registers f to be called, from the sampling goroutine, on every state change.
// f must return quickly (flip /ready, log, set a gauge).
func (g *MemoryGuard) OnChange(f func(old, new MemoryState)) {
	g.mu.Lock()
	g.callbacks = append(g.callbacks[:len(g.callbacks):len(g.callbacks)], f)
	g.mu.Unlock()
}

// RetryAfter is the delay suggested to refused clients: a few sampling periods, the time a
// GC cycle needs to bring memory back under the low-water mark.
func (g *MemoryGuard) RetryAfter() time.Duration { return max(10*g.cfg.SampleInterval, time.Second) }

// Close stops sampling and restores the soft memory limit that was in effect before.
// Admit keeps returning the last state. Idempotent.
func (g *MemoryGuard) Close() {
	g.once.Do(func() {
		close(g.stop)
		g.wg.Wait()
		if !g.cfg.KeepGoLimit {
			debug.SetMemoryLimit(g.prevLimit)
		}
	})
}

// DetectMemory returns the memory available to this process: the cgroup v2 memory.max or
// cgroup v1 memory.limit_in_bytes when set, else MemTotal from /proc/meminfo. source says
// which one was used.
func DetectMemory() (bytes int64, source string, err error) {
	return detectMemory("/")
}

func detectMemory(root string) (int64, string, error) {
	var meminfo int64
	if b, err := os.ReadFile(root + "proc/meminfo"); err == nil {
		meminfo = parseMemInfo(b)
	}
	for _, p := range []string{
		"sys/fs/cgroup/memory.max",                   // cgroup v2
		"sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
	} {
		b, err := os.ReadFile(root + p)
		if err != nil {
			continue
		}
		s := string(bytes.TrimSpace(b))
		if s == "max" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 reports "no limit" as a huge page-aligned number.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 || (meminfo > 0 && n >= meminfo) {
			continue
		}
		return n, "/" + p, nil
	}
	if meminfo > 0 {
		return meminfo, "/proc/meminfo", nil
	}
	return 0, "", fmt.Errorf("no cgroup memory limit and no MemTotal in %sproc/meminfo", root)
}

func parseMemInfo(b []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("MemTotal:")) {
			continue
		}
		f := bytes.Fields(line[len("MemTotal:"):])
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb << 10
	}
	return 0
}
