package limits

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAllow measures the hit path for existing keys, spread over many clients and
// goroutines as on a busy server.
func BenchmarkAllow(b *testing.B) {
	for _, nkeys := range []int{1, 1000, 100000} {
		b.Run("keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			rl, _ := NewRateLimiter(RateLimitConfig{RequestsPerMinute: -1, MaxBurst: 1 << 30})
			defer rl.Close()
			keys := make([]string, nkeys)
			for i := range keys {
				keys[i] = "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
				rl.Allow(keys[i], time.Now())
			}
			var next atomic.Uint64
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				for pb.Next() {
					rl.Allow(keys[i%nkeys], now)
					i++
				}
			})
		})
	}
}
