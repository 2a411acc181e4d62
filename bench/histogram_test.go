package bench

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(math.Exp(rand.Float64()*12)) * 100 // 100ns .. ~16ms, log-uniform
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := float64(vals[int(math.Ceil(q*float64(len(vals))))-1])
		got := h.Quantile(q)
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("q%.3f = %.0f, want %.0f ±2%%", q, got, want)
		}
	}
	if h.Max() != float64(vals[len(vals)-1]) || h.Count() != uint64(len(vals)) {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
	// Round trip through the worker wire format and merge.
	m := NewHistogram()
	m.Merge(h.wire().histogram())
	m.Merge(h)
	if m.Count() != 2*h.Count() || m.Quantile(0.99) != h.Quantile(0.99) {
		t.Fatalf("merge: count %d p99 %v vs %v", m.Count(), m.Quantile(0.99), h.Quantile(0.99))
	}
}

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 123456789, 1 << 40, 1 << 41, math.MaxInt64} {
		i := bucketOf(v)
		low, w := bucketRange(i)
		if i < nBuckets-1 && (v < low || v >= low+w) {
			t.Errorf("v=%d in bucket %d [%d,%d)", v, i, low, low+w)
		}
		if i >= nBuckets {
			t.Errorf("v=%d bucket %d out of range", v, i)
		}
	}
}

func TestScanReply(t *testing.T) {
	f := func(in string, want reply) {
		t.Helper()
		var got reply
		if err := scanReply([]byte(in), &got); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got != want {
			t.Fatalf("%s: got %+v, want %+v", in, got, want)
		}
	}
	f(`{"jsonrpc":"2.0","id":42,"result":{}}`, reply{hasID: true, id: 42})
	f(`{"result":{"content":[{"text":"\"id\":7 }{"}]},"id":1025,"jsonrpc":"2.0"}`, reply{hasID: true, id: 1025})
	f(` { "jsonrpc" : "2.0" , "id" : 3 , "error" : { "message":"x","code" : -32601 } }`, reply{hasID: true, id: 3, isError: true, code: -32601})
	f(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"id":9}}`, reply{isRequest: true})
	f(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}`, reply{isError: true, code: -32700})
	for _, bad := range []string{``, `[]`, `{"id":`, `{"a":"unterminated}`} {
		var r reply
		if err := scanReply([]byte(bad), &r); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
