package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
)

// WriteSVG draws r as an SVG: on the left the latency histogram (log-scaled
// latency axis, share of replies per bin, percentile markers), on the right
// replies per second over time. It needs no plotting library.
func WriteSVG(w io.Writer, r *Result) error {
	const (
		width, height = 1000, 360
		pw, ph        = 420, 260 // panel size
		lx, ty        = 60, 50   // left panel origin (top-left)
		rx            = 560      // right panel x
	)
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	era := "session"
	if r.Stateless {
		era = "stateless"
	}
	p(`<text x="%d" y="20" font-size="14">erlmcp bench: %s over %s (%s), %d conns, depth %d: %.0f req/s, p99 %.3f ms</text>`+"\n",
		lx, r.Mode, r.Transport, era, r.Conns, r.Depth, r.RPS, r.Latency.P99)

	// Left: latency histogram over log-spaced bins.
	p(`<text x="%d" y="%d">latency histogram (share of replies, log latency axis)</text>`+"\n", lx, ty-8)
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", lx, ty, pw, ph)
	h := r.hist
	if h != nil && h.total > 0 {
		lo := math.Max(float64(h.min), 1000) // ns; at least 1 µs
		hi := math.Max(float64(h.max), lo*10)
		llo, lhi := math.Log10(lo), math.Log10(hi)
		const nbins = 60
		var bins [nbins]float64
		for i, c := range h.counts {
			if c == 0 {
				continue
			}
			low, wd := bucketRange(i)
			v := math.Max(float64(low)+float64(wd)/2, lo)
			b := int((math.Log10(v) - llo) / (lhi - llo) * nbins)
			b = min(max(b, 0), nbins-1)
			bins[b] += float64(c)
		}
		peak := 0.0
		for _, c := range bins {
			peak = math.Max(peak, c)
		}
		for i, c := range bins {
			if c == 0 {
				continue
			}
			bh := c / peak * float64(ph-10)
			p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4682b4"/>`+"\n",
				float64(lx)+float64(i)*pw/nbins, float64(ty+ph)-bh, float64(pw)/nbins-1, bh)
		}
		xOf := func(ns float64) float64 {
			return float64(lx) + (math.Log10(math.Max(ns, lo))-llo)/(lhi-llo)*pw
		}
		// Decade ticks.
		for d := math.Ceil(llo); d <= lhi; d++ {
			x := xOf(math.Pow(10, d))
			p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888"/>`+"\n", x, ty+ph, x, ty+ph+5)
			p(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, ty+ph+17, durLabel(math.Pow(10, d)))
		}
		for _, q := range []struct {
			name string
			v    float64
		}{{"p50", r.Latency.P50}, {"p99", r.Latency.P99}, {"p99.9", r.Latency.P999}} {
			x := xOf(q.v * 1e6)
			p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c0392b" stroke-dasharray="4,3"/>`+"\n", x, ty, x, ty+ph)
			p(`<text x="%.1f" y="%d" fill="#c0392b">%s</text>`+"\n", x+3, ty+12, q.name)
		}
	}
	p(`<text x="%d" y="%d" text-anchor="middle">latency</text>`+"\n", lx+pw/2, ty+ph+32)

	// Right: throughput per second.
	p(`<text x="%d" y="%d">replies per second</text>`+"\n", rx, ty-8)
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", rx, ty, pw, ph)
	if n := len(r.Series); n > 0 {
		peak := 1.0
		for _, v := range r.Series {
			peak = math.Max(peak, float64(v))
		}
		peak *= 1.1
		p(`<polyline fill="none" stroke="#27ae60" stroke-width="2" points="`)
		for i, v := range r.Series {
			x := float64(rx) + (float64(i)+0.5)/float64(n)*pw
			y := float64(ty+ph) - float64(v)/peak*float64(ph)
			p("%.1f,%.1f ", x, y)
		}
		p(`"/>` + "\n")
		for i := 0; i <= 4; i++ {
			v := peak * float64(i) / 4
			y := float64(ty+ph) - float64(i)/4*float64(ph)
			p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", rx-4, y+4, countLabel(v))
		}
		p(`<text x="%d" y="%d" text-anchor="middle">seconds (0–%d)</text>`+"\n", rx+pw/2, ty+ph+17, n)
	}
	p("</svg>\n")
	return bw.Flush()
}

func durLabel(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%gs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%gms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%gµs", ns/1e3)
	}
	return fmt.Sprintf("%gns", ns)
}

func countLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fK", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
