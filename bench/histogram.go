package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Histogram layout: values below subCount are counted exactly; each power of
// two range [2^k, 2^(k+1)) above is split into subCount linear sub-buckets, so
// a recorded value is known within 1/subCount (1.6%), as HDR histograms with 2
// significant digits. Values are nanoseconds; maxExp bounds them at ~18 minutes.
const (
	subBits  = 6
	subCount = 1 << subBits
	maxExp   = 40
	nBuckets = subCount + (maxExp-subBits+1)*subCount
)

// Histogram is a log-linear latency histogram in nanoseconds. Record is safe
// for concurrent use (atomic adds); Merge, Quantile and the other readers must
// not run concurrently with Record. The zero value is not usable: call
// NewHistogram.
type Histogram struct {
	counts []uint64
	total  uint64
	sum    uint64
	min    uint64 // math.MaxUint64 when empty
	max    uint64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, nBuckets), min: math.MaxUint64}
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	k := bits.Len64(v) - 1 // v in [2^k, 2^(k+1)), k >= subBits
	if k > maxExp {
		return nBuckets - 1
	}
	shift := k - subBits
	sub := int(v>>shift) - subCount
	return subCount + shift*subCount + sub
}

// bucketRange returns the lowest value of bucket i and the bucket's width.
func bucketRange(i int) (low, width uint64) {
	if i < subCount {
		return uint64(i), 1
	}
	shift := (i - subCount) / subCount
	sub := (i - subCount) % subCount
	return uint64(subCount+sub) << shift, 1 << shift
}

// Record adds one value in nanoseconds. Negative values count as 0.
func (h *Histogram) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	v := uint64(ns)
	atomic.AddUint64(&h.counts[bucketOf(v)], 1)
	atomic.AddUint64(&h.total, 1)
	atomic.AddUint64(&h.sum, v)
	for {
		m := atomic.LoadUint64(&h.max)
		if v <= m || atomic.CompareAndSwapUint64(&h.max, m, v) {
			break
		}
	}
	for {
		m := atomic.LoadUint64(&h.min)
		if v >= m || atomic.CompareAndSwapUint64(&h.min, m, v) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return atomic.LoadUint64(&h.total) }

// Merge adds the counts of o into h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
	h.min = min(h.min, o.min)
}

// Quantile returns the value (ns) at quantile q in [0, 1]: the middle of the
// bucket holding it, clamped to the exact min and max.
func (h *Histogram) Quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, w := bucketRange(i)
			v := float64(low) + float64(w-1)/2
			return math.Min(math.Max(v, float64(h.min)), float64(h.max))
		}
	}
	return float64(h.max)
}

// Mean returns the mean value in ns.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.total)
}

// Max returns the largest recorded value in ns.
func (h *Histogram) Max() float64 { return float64(h.max) }

// histWire is a Histogram on the wire between worker processes: sparse
// [bucket, count] pairs.
type histWire struct {
	Buckets [][2]uint64 `json:"b"`
	Sum     uint64      `json:"sum"`
	Min     uint64      `json:"min"`
	Max     uint64      `json:"max"`
}

func (h *Histogram) wire() histWire {
	w := histWire{Sum: h.sum, Min: h.min, Max: h.max}
	for i, c := range h.counts {
		if c != 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return w
}

func (w histWire) histogram() *Histogram {
	h := NewHistogram()
	for _, b := range w.Buckets {
		if b[0] < nBuckets {
			h.counts[b[0]] += b[1]
			h.total += b[1]
		}
	}
	h.sum, h.min, h.max = w.Sum, w.Min, w.Max
	return h
}
