package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints r for humans.
func WriteText(w io.Writer, r *Result) {
	era := "session"
	if r.Stateless {
		era = "stateless 2026-07-28"
	}
	fmt.Fprintf(w, "%s over %s (%s) to %s: %d conns, %d procs, depth %d\n", r.Mode, r.Transport, era, r.Target, r.Conns, r.Procs, r.Depth)
	if r.Mode != ModeIdle {
		fmt.Fprintf(w, "  requests %d in %.2fs = %.0f req/s\n", r.Requests, r.Seconds, r.RPS)
		l := r.Latency
		fmt.Fprintf(w, "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
		for _, k := range sortedKeys(r.ByMethod) {
			l := r.ByMethod[k]
			fmt.Fprintf(w, "    %-10s n=%d  p50 %.3f  p99 %.3f  p99.9 %.3f\n", k, l.Count, l.P50, l.P99, l.P999)
		}
		fmt.Fprintf(w, "  client CPU %.2fs (%.2f µs/req)\n", r.ClientCPUSeconds, r.ClientCPUPerReq)
	}
	if r.Initialize != nil {
		fmt.Fprintf(w, "  initialize ms: n=%d  p50 %.3f  p99 %.3f  max %.3f\n", r.Initialize.Count, r.Initialize.P50, r.Initialize.P99, r.Initialize.Max)
	}
	fmt.Fprintf(w, "  errors %d", r.Errors)
	for _, k := range sortedKeys(r.ErrorsByKind) {
		fmt.Fprintf(w, "  %s=%d", k, r.ErrorsByKind[k])
	}
	if r.Retried > 0 {
		fmt.Fprintf(w, "  (retried after a server-side close: %d)", r.Retried)
	}
	fmt.Fprintln(w)
	for _, k := range sortedKeys(r.ErrorSamples) {
		fmt.Fprintf(w, "    e.g. %s\n", r.ErrorSamples[k])
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "  server (%s): RSS %s -> %s, goroutines %d -> %d, threads %d -> %d\n", s.Loaded.Source,
			mib(s.Baseline.RSSBytes), mib(s.Loaded.RSSBytes), s.Baseline.Goroutines, s.Loaded.Goroutines, s.Baseline.Threads, s.Loaded.Threads)
		if r.Mode == ModeIdle {
			fmt.Fprintf(w, "  sessions %d: %.2f KiB RSS per session, %.2f KiB heap per session, %.3f goroutines per session\n",
				s.Sessions, s.RSSPerSession/1024, s.HeapPerSession/1024, s.GoroutinesPerSession)
		}
		if s.CPUPerReq > 0 {
			fmt.Fprintf(w, "  server CPU %.2f µs/req\n", s.CPUPerReq)
		}
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteMarkdown prints r as a Markdown table row with its header.
func WriteMarkdown(w io.Writer, r *Result) {
	if r.Mode == ModeIdle {
		fmt.Fprintln(w, "| mode | transport | sessions | RSS before | RSS after | KiB/session | goroutines before → after | errors |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---|---:|")
		s := r.Server
		if s == nil {
			s = &ServerReport{Baseline: ServerStats{Goroutines: -1}, Loaded: ServerStats{Goroutines: -1}}
		}
		fmt.Fprintf(w, "| idle | %s | %d | %s | %s | %.2f | %d → %d | %s |\n", r.Transport, s.Sessions,
			mib(s.Baseline.RSSBytes), mib(s.Loaded.RSSBytes), s.RSSPerSession/1024, s.Baseline.Goroutines, s.Loaded.Goroutines, errText(r))
		return
	}
	fmt.Fprintln(w, "| mode | transport | conns | depth | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | client µs/req |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
	l := r.Latency
	fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f | %s | %.2f |\n", r.Mode, transportName(r), r.Conns, r.Depth,
		r.RPS, l.P50, l.P90, l.P99, l.P999, l.Max, errText(r), r.ClientCPUPerReq)
	for _, k := range sortedKeys(r.ByMethod) {
		l := r.ByMethod[k]
		fmt.Fprintf(w, "| ↳ %s | | | | %d replies | %.3f | %.3f | %.3f | %.3f | %.3f | | |\n", k, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
}

func transportName(r *Result) string {
	if r.Transport == "http" && r.Stateless {
		return "http stateless"
	}
	if r.Transport == "http" {
		return "http session"
	}
	return r.Transport
}

func errText(r *Result) string {
	if r.Errors == 0 {
		return "0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d (", r.Errors)
	for i, k := range sortedKeys(r.ErrorsByKind) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, r.ErrorsByKind[k])
	}
	b.WriteString(")")
	return b.String()
}
