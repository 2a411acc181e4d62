// Package limits decides what the server admits: per-client and global rate limits, message
// size limits, a memory guard, request signatures, bearer-token authentication (API keys
// and JWTs) and secrets loaded from files or the environment. It knows nothing about MCP
// or sockets; server/ calls it on every transport.
//
// # Rate limits: the arithmetic
//
// With the seed's defaults, N = max_requests_per_minute = 1000 and B = max_burst = 100:
//
//   - Each key (auth subject, else session id, else remote IP) has a one-minute window
//     that opens at its first request. Within it the key may make N requests; request
//     N+1 is refused with retryAfter = the time left in the window. Refused requests do
//     not count. The window does not refill gradually, so a fresh client making 1100
//     requests within a minute gets exactly 1000 admitted and 100 refused whether it takes
//     one second or fifty (`for i in {1..1100}; do curl …/api/ping; done` → 1000 × 200,
//     100 × 429). A token bucket of capacity N refilling at N/60 per second would admit
//     1000 + 16.7·T for a loop lasting T seconds, so the seed's check could not hold.
//   - B bounds the instantaneous rate inside the window: a burst bucket of capacity B
//     refilling B tokens every 100 ms (burst_interval). A key can make at most B requests
//     back to back and at most 10·B = 1000 per second, so it needs at least
//     N / (10·B) = 1 s to spend a whole window; a pipelining client that sends 1000
//     requests in one write gets B admitted and the rest refused with retryAfter ≈ 1 ms
//     per missing token. A sequential client (curl: 2–5 ms per request, ≤ 500/s) never
//     meets it.
//   - Over a long busy stretch a key gets N per minute: windows are back to back, each
//     opened by the first request after the previous closed. Worst case around a window
//     edge is 2·N within a short time (N at the end of one window, N at the start of the
//     next), bounded by the burst rate to ≥ 2·N/(10·B) = 2 s.
//   - The optional global window (global_max_requests_per_minute) counts all keys.
//
// Cost: keys are spread over 256 shards by maphash, each with its own mutex and map;
// admitting a request for a known key is one hash, one lock and a few arithmetic
// operations, with no allocation. A bucket is about 100 bytes including its map entry,
// so 100K clients cost ~10 MiB. Buckets idle for a full window are dropped every
// cleanup_interval_ms; a dropped key starts fresh, which is what it would have had anyway.
//
// Example:
//
//	rl, _ := limits.NewRateLimiter(limits.RateLimitConfig{})
//	defer rl.Close()
//	if ok, retry := rl.Allow(clientKey, time.Now()); !ok {
//		// HTTP: 429 with Retry-After: ceil(retry seconds); JSON-RPC: -32003 with data.retryAfterMs
//	}
//
// # Memory guard
//
// MemoryGuard sets the Go soft memory limit (GOMEMLIMIT) to memory_limit_bytes and samples
// the runtime's memory every 100 ms from one goroutine. At 85% of the limit it turns
// Overloaded (Admit returns false: new connections and new work are refused, ping and
// cancellation and work in flight go on), at 70% Normal again. The gap keeps it from
// flapping with each GC cycle. The daemon also hands Admit to the line transport
// (loop.Config.Admit): a connection's unfinished line may grow past 64 KiB only while the
// guard admits, so a flood of huge messages stops being buffered within one sample of the
// high-water mark (the flood test: 200 × 10 MiB against 512 MiB peaks near 530 MiB RSS).
//
// # Request signing
//
// Verifier checks HMAC-SHA256 signatures over "erlmcp-v1\n" + timestamp + "\n" + nonce +
// "\n" + body, with a clock-skew window (default ±5 min) and a bounded replay cache that
// remembers each nonce until its timestamp leaves the window. Keys never appear in errors.
//
// # Authentication
//
// Authenticator accepts static API keys, configured by their SHA-256 only, and JWTs
// (HS256, RS256, ES256; keys from HMAC secrets or a JWKS file or URL refreshed in the
// background) whose aud contains this server's resource URL, with exp required and
// exp/nbf checked with leeway. It yields a Principal (subject, scopes); ScopeChecker maps
// tools to the scopes they need.
package limits
