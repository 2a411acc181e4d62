package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ServerStats is one sample of the server process.
type ServerStats struct {
	// RSSBytes is the resident set size.
	RSSBytes uint64 `json:"rssBytes"`
	// Goroutines is go_goroutines from /metrics, or -1 when unknown.
	Goroutines int `json:"goroutines"`
	// Threads is the OS thread count from /proc, or -1 when unknown.
	Threads int `json:"threads"`
	// HeapBytes is go_memstats_heap_alloc_bytes from /metrics (live plus
	// not yet collected), or 0 when unknown.
	HeapBytes uint64 `json:"heapBytes,omitempty"`
	// CPUSeconds is user+system CPU from /proc/PID/stat, or -1 when unknown.
	CPUSeconds float64 `json:"cpuSeconds"`
	// Source says where the sample came from.
	Source string `json:"source"`
}

// sampleServer reads the server's stats from /proc/PID (pid > 0) and/or its
// metrics URL. It returns ok=false when neither is available.
func sampleServer(pid int, metricsURL string) (ServerStats, bool) {
	s := ServerStats{Goroutines: -1, Threads: -1, CPUSeconds: -1}
	ok := false
	if pid > 0 {
		if err := readProc(pid, &s); err == nil {
			ok = true
			s.Source = fmt.Sprintf("/proc/%d", pid)
		}
	}
	if metricsURL != "" {
		if err := readMetrics(metricsURL, &s, !ok); err == nil {
			if s.Source != "" {
				s.Source += " + "
			}
			s.Source += metricsURL
			ok = true
		}
	}
	return s, ok
}

func readProc(pid int, s *ServerStats) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseUint(f[0], 10, 64)
			s.RSSBytes = kb << 10
		case "Threads":
			s.Threads, _ = strconv.Atoi(f[0])
		}
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the parenthesized command: utime and stime are 14th and 15th.
		if i := bytes.LastIndexByte(st, ')'); i > 0 {
			f := strings.Fields(string(st[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseFloat(f[11], 64)
				sy, _ := strconv.ParseFloat(f[12], 64)
				s.CPUSeconds = (u + sy) / 100 // USER_HZ is 100 on Linux
			}
		}
	}
	return nil
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

func readMetrics(url string, s *ServerStats, rss bool) error {
	resp, err := metricsClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("bench: %s: HTTP %d", url, resp.StatusCode)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		name, val, ok := strings.Cut(l, " ")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			if rss {
				s.RSSBytes = uint64(v)
			}
		case "go_memstats_heap_alloc_bytes":
			s.HeapBytes = uint64(v)
		case "go_goroutines":
			s.Goroutines = int(v)
		}
	}
	return sc.Err()
}
