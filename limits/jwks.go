package limits

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds a fetched or read key set.
const maxJWKSBytes = 1 << 20

// jwk is one JSON Web Key (RFC 7517) of the kinds we verify with.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

type jwkKey struct {
	kid string
	alg string // RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// ParseJWKS parses a JSON Web Key Set and returns its RSA and P-256 EC signing keys.
// Keys of other kinds or for encryption (use "enc") are skipped; a set with no usable key
// is an error.
func ParseJWKS(data []byte) (n int, err error) {
	keys, err := parseJWKS(data)
	return len(keys), err
}

func parseJWKS(data []byte) ([]jwkKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("limits: JWKS is not JSON: %w", err)
	}
	var out []jwkKey
	var errs []error
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := b64big(k.N)
			e, err2 := b64big(k.E)
			if err1 != nil || err2 != nil || n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
				errs = append(errs, fmt.Errorf("keys[%d] (kid %q): bad RSA key (n must be ≥ 2048 bits)", i, k.Kid))
				continue
			}
			out = append(out, jwkKey{kid: k.Kid, alg: "RS256", key: &rsa.PublicKey{N: n, E: int(e.Int64())}})
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				errs = append(errs, fmt.Errorf("keys[%d] (kid %q): bad P-256 coordinates", i, k.Kid))
				continue
			}
			pt := append(append([]byte{4}, x...), y...)
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
			if err != nil {
				errs = append(errs, fmt.Errorf("keys[%d] (kid %q): %v", i, k.Kid, err))
				continue
			}
			out = append(out, jwkKey{kid: k.Kid, alg: "ES256", key: pub})
		}
	}
	if len(out) == 0 {
		errs = append(errs, errors.New("no RSA or P-256 signing key"))
		return nil, fmt.Errorf("limits: JWKS: %w", errors.Join(errs...))
	}
	return out, nil
}

func b64big(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url")
	}
	return new(big.Int).SetBytes(b), nil
}

// jwksSource holds the current key set and refreshes it.
type jwksSource struct {
	file, url  string
	client     *http.Client
	minRefresh time.Duration

	keys     atomic.Pointer[[]jwkKey]
	mu       sync.Mutex // serialises loads
	lastLoad time.Time
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

func newJWKSSource(file, url string, client *http.Client, every, minRefresh time.Duration) (*jwksSource, error) {
	s := &jwksSource{file: file, url: url, client: client, minRefresh: minRefresh, stop: make(chan struct{})}
	if err := s.load(context.Background()); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				// A failed refresh keeps the previous keys: an IdP outage must not lock
				// everyone out; the next tick tries again.
				_ = s.load(context.Background())
			}
		}
	}()
	return s, nil
}

func (s *jwksSource) close() {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
}

func (s *jwksSource) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastLoad = time.Now()
	var data []byte
	var err error
	if s.file != "" {
		data, err = readLimited(s.file)
		if err != nil {
			return fmt.Errorf("limits: jwks_file: %w", err)
		}
	} else {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
		if rerr != nil {
			return fmt.Errorf("limits: jwks_url: %w", rerr)
		}
		resp, rerr := s.client.Do(req)
		if rerr != nil {
			return fmt.Errorf("limits: jwks_url: %w", rerr)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("limits: jwks_url %s: HTTP %d", s.url, resp.StatusCode)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return fmt.Errorf("limits: jwks_url: %w", err)
		}
		if len(data) > maxJWKSBytes {
			return fmt.Errorf("limits: jwks_url %s: key set over %d bytes", s.url, maxJWKSBytes)
		}
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return err
	}
	s.keys.Store(&keys)
	return nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("%s: over %d bytes", path, maxJWKSBytes)
	}
	return b, nil
}

// find returns the key for kid and alg; with no kid, the only key of that alg.
func (s *jwksSource) find(kid, alg string) any {
	p := s.keys.Load()
	if p == nil {
		return nil
	}
	var only any
	n := 0
	for _, k := range *p {
		if k.alg != alg {
			continue
		}
		if kid != "" && k.kid == kid {
			return k.key
		}
		only = k.key
		n++
	}
	if kid == "" && n == 1 {
		return only
	}
	return nil
}

// refreshIfAllowed reloads the key set unless that was done within minRefresh, so a
// stream of tokens with made-up kids costs at most one fetch per minRefresh.
func (s *jwksSource) refreshIfAllowed(ctx context.Context) bool {
	s.mu.Lock()
	recent := time.Since(s.lastLoad) < s.minRefresh
	s.mu.Unlock()
	if recent {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return s.load(ctx) == nil
}
