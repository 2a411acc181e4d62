package limits

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryGuardHysteresis(t *testing.T) {
	var used atomic.Int64
	g, err := NewMemoryGuard(MemoryGuardConfig{
		LimitBytes: 1000 << 20, HighWater: 0.8, LowWater: 0.6,
		SampleInterval: time.Hour, KeepGoLimit: true,
		Sample: func() int64 { return used.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var changes []MemoryState
	g.OnChange(func(_, n MemoryState) { changes = append(changes, n) })
	steps := []struct {
		mib   int64
		admit bool
	}{
		{100, true}, {799, true}, {800, false}, {900, false},
		{700, false}, {601, false}, // between the marks: stays overloaded
		{600, true}, {700, true}, // between the marks: stays normal
		{2000, false}, {0, true},
	}
	for i, st := range steps {
		used.Store(st.mib << 20)
		g.Sample()
		if g.Admit() != st.admit {
			t.Fatalf("step %d (%d MiB): Admit %v, want %v", i, st.mib, g.Admit(), st.admit)
		}
		if g.InUse() != st.mib<<20 {
			t.Fatalf("InUse %d", g.InUse())
		}
	}
	want := []MemoryState{MemoryOverloaded, MemoryNormal, MemoryOverloaded, MemoryNormal}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
	if int(g.State()) != 0 || MemoryOverloaded.String() != "overloaded" {
		t.Fatal("state gauge")
	}
}

func TestMemoryGuardRuntime(t *testing.T) {
	// A real sample of this test process is well under 4 GiB.
	g, err := NewMemoryGuard(MemoryGuardConfig{LimitBytes: 4 << 30, SampleInterval: 10 * time.Millisecond, KeepGoLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	time.Sleep(30 * time.Millisecond)
	if !g.Admit() || g.InUse() <= 0 || g.InUse() > 1<<30 {
		t.Fatalf("Admit %v InUse %d", g.Admit(), g.InUse())
	}
	// A limit below what the process uses trips the guard on its first sample.
	g2, err := NewMemoryGuard(MemoryGuardConfig{LimitBytes: 16 << 20, HighWater: 0.01, LowWater: 0.005, KeepGoLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if g2.Admit() {
		t.Fatalf("guard with a %d-byte high mark admits at %d bytes in use", int64(16<<20)/100, g2.InUse())
	}
}

func TestMemoryGuardConfigValidate(t *testing.T) {
	for _, c := range []MemoryGuardConfig{
		{LimitBytes: -1}, {LimitBytes: 1024}, {HighWater: 1.5}, {LowWater: -0.1},
		{HighWater: 0.5, LowWater: 0.6}, {SampleInterval: -time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestDetectMemory(t *testing.T) {
	write := func(root, p, s string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	meminfo := "MemTotal:       16318412 kB\nMemFree:  1 kB\n"
	cases := []struct {
		name  string
		files map[string]string
		want  int64
		src   string
	}{
		{"v2 limit", map[string]string{"proc/meminfo": meminfo, "sys/fs/cgroup/memory.max": "2147483648\n"}, 2 << 30, "/sys/fs/cgroup/memory.max"},
		{"v2 max", map[string]string{"proc/meminfo": meminfo, "sys/fs/cgroup/memory.max": "max\n"}, 16318412 << 10, "/proc/meminfo"},
		{"v1 limit", map[string]string{"proc/meminfo": meminfo, "sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824"}, 1 << 30, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"v1 unlimited", map[string]string{"proc/meminfo": meminfo, "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"}, 16318412 << 10, "/proc/meminfo"},
		{"garbage", map[string]string{"proc/meminfo": meminfo, "sys/fs/cgroup/memory.max": "lots"}, 16318412 << 10, "/proc/meminfo"},
		{"nothing", map[string]string{"proc/meminfo": "junk"}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir() + "/"
			for p, s := range tc.files {
				write(root, p, s)
			}
			n, src, err := detectMemory(root)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("got %d from %s, want an error", n, src)
				}
				return
			}
			if err != nil || n != tc.want || src != tc.src {
				t.Fatalf("got %d %q %v, want %d %q", n, src, err, tc.want, tc.src)
			}
		})
	}
	if n, src, err := DetectMemory(); err != nil || n <= 0 {
		t.Fatalf("DetectMemory on this machine: %d %s %v", n, src, err)
	}
}

func TestMemoryGuardSetLimit(t *testing.T) {
	var used atomic.Int64
	g, err := NewMemoryGuard(MemoryGuardConfig{LimitBytes: 100 << 20, HighWater: 0.8, LowWater: 0.5,
		SampleInterval: time.Hour, KeepGoLimit: true, Sample: func() int64 { return used.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	used.Store(70 << 20)
	if g.Sample() != MemoryNormal {
		t.Fatal("70 of 100 MiB should be normal")
	}
	if err := g.SetLimit(80 << 20); err != nil {
		t.Fatal(err)
	}
	if g.Sample() != MemoryOverloaded {
		t.Fatal("70 of 80 MiB (high 64) should be overloaded")
	}
	if l, h, lo := g.Limit(); l != 80<<20 || h != 64<<20 || lo != 40<<20 {
		t.Fatalf("marks %d %d %d", l, h, lo)
	}
	if g.SetLimit(1) == nil || g.SetLimit(0) == nil {
		t.Fatal("tiny limit accepted")
	}
}
