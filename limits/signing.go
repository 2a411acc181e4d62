package limits

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"time"
)

// HTTP headers and the params._meta key that carry a request signature.
const (
	HeaderTimestamp = "X-Erlmcp-Timestamp"
	HeaderNonce     = "X-Erlmcp-Nonce"
	HeaderSignature = "X-Erlmcp-Signature"
	// MetaSignature is the params._meta member of a signed TCP/stdio request:
	//	"_meta":{"io.erlmcp/signature":{"timestamp":"1767225600","nonce":"…","signature":"<hex>"}}
	MetaSignature = "io.erlmcp/signature"
)

// Signing defaults.
const (
	// DefaultSkew is how far a signed request's timestamp may be from the server's clock,
	// either way; it is also how long a nonce is remembered.
	DefaultSkew = 5 * time.Minute
	// DefaultMaxNonces bounds the replay cache: at 100K sessions each signing a few
	// requests a second for a 5-minute window the cache would need far more, so the
	// bound is a memory cap (about 100 bytes a nonce) and refusals past it are explicit.
	DefaultMaxNonces = 1 << 20
)

// Signature verification errors. Messages never include keys or expected signatures.
var (
	ErrSignatureMissing   = errors.New("limits: request is not signed (timestamp, nonce and signature are required)")
	ErrSignatureMalformed = errors.New("limits: request signature is malformed")
	ErrSignatureStale     = errors.New("limits: request timestamp is outside the allowed clock skew")
	ErrSignatureInvalid   = errors.New("limits: request signature does not match")
	ErrSignatureReplayed  = errors.New("limits: request nonce was already used")
	ErrReplayCacheFull    = errors.New("limits: replay cache is full; signed requests are refused until nonces expire")
)

// SigningConfig configures a Verifier.
type SigningConfig struct {
	// Keys are the HMAC-SHA256 keys; a signature made with any of them is accepted, so a key
	// can be rotated by adding the new one, moving clients, then removing the old. Load them
	// with LoadSecret; never log them. At least one key of ≥ 32 bytes is required.
	Keys [][]byte `json:"-"`
	// Skew is the allowed clock difference, either way. If zero, DefaultSkew.
	Skew time.Duration `json:"skew"`
	// MaxNonces bounds the replay cache. If zero, DefaultMaxNonces.
	MaxNonces int `json:"max_nonces"`
}

// Validate reports the first bad field (without the key material).
func (c *SigningConfig) Validate() error {
	if len(c.Keys) == 0 {
		return errors.New("limits: request signing needs at least one key (signing_key)")
	}
	for i, k := range c.Keys {
		if len(k) < 32 {
			return fmt.Errorf("limits: signing key #%d is %d bytes; HMAC-SHA256 wants at least 32", i+1, len(k))
		}
	}
	if c.Skew < 0 {
		return fmt.Errorf("limits: signing skew %v must be ≥ 0", c.Skew)
	}
	if c.MaxNonces < 0 {
		return fmt.Errorf("limits: signing max_nonces %d must be ≥ 0", c.MaxNonces)
	}
	return nil
}

// Sign returns the hex HMAC-SHA256 signature of body with timestamp and nonce, as a client
// computes it. The signed bytes are:
//
//	"erlmcp-v1\n" + timestamp + "\n" + nonce + "\n" + body
//
// where timestamp is Unix seconds in decimal. For HTTP, body is the request body and the
// three values go in the X-Erlmcp-* headers. For TCP and stdio, the signature travels in
// params._meta["io.erlmcp/signature"]: the client writes the frame with "signature":"" and
// signs that exact frame (without the newline), then puts the hex into the empty string.
func Sign(key []byte, timestamp, nonce string, body ...[]byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("erlmcp-v1\n"))
	m.Write([]byte(timestamp))
	m.Write([]byte{'\n'})
	m.Write([]byte(nonce))
	m.Write([]byte{'\n'})
	for _, b := range body {
		m.Write(b)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Verifier checks signed requests and remembers their nonces. Safe for concurrent use.
type Verifier struct {
	keys   [][]byte
	skew   time.Duration
	nonces replayCache
}

// NewVerifier returns a Verifier for cfg (keys are copied).
func NewVerifier(cfg SigningConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.MaxNonces == 0 {
		cfg.MaxNonces = DefaultMaxNonces
	}
	v := &Verifier{skew: cfg.Skew}
	for _, k := range cfg.Keys {
		v.keys = append(v.keys, bytes.Clone(k))
	}
	v.nonces.init(cfg.MaxNonces)
	return v, nil
}

// Verify checks an HTTP-style signature: body signed with timestamp and nonce as Sign does.
// The nonce is recorded only once the signature is good, so forged requests cannot fill
// the replay cache.
func (v *Verifier) Verify(now time.Time, timestamp, nonce, signature string, body []byte) error {
	return v.verify(now, timestamp, nonce, signature, body)
}

// VerifyFrame checks a TCP/stdio frame that carries its own signature in
// params._meta["io.erlmcp/signature"]: the signed bytes are the frame with the signature's
// hex removed (as the client signed it, with "signature":""). The signature must occur in
// the frame exactly once.
func (v *Verifier) VerifyFrame(now time.Time, timestamp, nonce, signature string, frame []byte) error {
	sig := trimSigPrefix(signature)
	if len(sig) != sha256.Size*2 {
		return ErrSignatureMalformed
	}
	i := bytes.Index(frame, []byte(sig))
	if i < 0 || bytes.Index(frame[i+len(sig):], []byte(sig)) >= 0 {
		return ErrSignatureMalformed
	}
	return v.verify(now, timestamp, nonce, signature, frame[:i], frame[i+len(sig):])
}

func trimSigPrefix(s string) string {
	if len(s) > 7 && s[:7] == "sha256=" {
		return s[7:]
	}
	return s
}

func (v *Verifier) verify(now time.Time, timestamp, nonce, signature string, body ...[]byte) error {
	if timestamp == "" || nonce == "" || signature == "" {
		return ErrSignatureMissing
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || len(timestamp) > 12 {
		return fmt.Errorf("%w: timestamp must be Unix seconds", ErrSignatureMalformed)
	}
	if len(nonce) < 8 || len(nonce) > 128 || !printableASCII(nonce) {
		return fmt.Errorf("%w: nonce must be 8–128 printable ASCII characters", ErrSignatureMalformed)
	}
	got, err := hex.DecodeString(trimSigPrefix(signature))
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: signature must be 64 hex digits", ErrSignatureMalformed)
	}
	t := time.Unix(ts, 0)
	if d := now.Sub(t); d > v.skew || d < -v.skew {
		return fmt.Errorf("%w (±%v)", ErrSignatureStale, v.skew)
	}
	ok := false
	for _, k := range v.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte("erlmcp-v1\n"))
		m.Write([]byte(timestamp))
		m.Write([]byte{'\n'})
		m.Write([]byte(nonce))
		m.Write([]byte{'\n'})
		for _, b := range body {
			m.Write(b)
		}
		// hmac.Equal is constant-time; every key is tried so timing does not tell which matched.
		if hmac.Equal(m.Sum(nil), got) {
			ok = true
		}
	}
	if !ok {
		return ErrSignatureInvalid
	}
	// The nonce is useless once the timestamp leaves the window, so it is kept until then.
	return v.nonces.add(nonce, t.Add(v.skew).UnixNano(), now.UnixNano())
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// NonceCount returns the number of nonces remembered.
func (v *Verifier) NonceCount() int { return v.nonces.len() }

const nonceShards = 64

// replayCache remembers nonces until they expire, bounded in size.
type replayCache struct {
	seed     maphash.Seed
	perShard int
	shards   [nonceShards]struct {
		mu     sync.Mutex
		m      map[string]int64 // nonce → expiry (Unix ns)
		minExp int64            // earliest expiry in m: a full shard is swept only past it
	}
}

func (rc *replayCache) init(max int) {
	rc.seed = maphash.MakeSeed()
	rc.perShard = (max + nonceShards - 1) / nonceShards
	for i := range rc.shards {
		rc.shards[i].m = make(map[string]int64)
	}
}

// add records nonce until expiry; it fails if the nonce is live already or the shard is
// full of live nonces.
func (rc *replayCache) add(nonce string, expiry, now int64) error {
	sh := &rc.shards[maphash.String(rc.seed, nonce)%nonceShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if exp, ok := sh.m[nonce]; ok && exp >= now {
		return ErrSignatureReplayed
	}
	if len(sh.m) >= rc.perShard {
		if sh.minExp >= now {
			return ErrReplayCacheFull // nothing has expired yet: do not scan
		}
		sh.minExp = 0
		for k, exp := range sh.m {
			if exp < now {
				delete(sh.m, k)
			} else if sh.minExp == 0 || exp < sh.minExp {
				sh.minExp = exp
			}
		}
		if len(sh.m) >= rc.perShard {
			return ErrReplayCacheFull
		}
	}
	if sh.minExp == 0 || expiry < sh.minExp {
		sh.minExp = expiry
	}
	sh.m[nonce] = expiry
	return nil
}

func (rc *replayCache) len() int {
	n := 0
	for i := range rc.shards {
		rc.shards[i].mu.Lock()
		n += len(rc.shards[i].m)
		rc.shards[i].mu.Unlock()
	}
	return n
}

// SignatureParts are the three values of a signature, as read from headers or _meta.
type SignatureParts struct {
	Timestamp string
	Nonce     string
	Signature string
}
