package limits

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newVerifier(t *testing.T, cfg SigningConfig) *Verifier {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = [][]byte{testKey}
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	now := t0
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	good := Sign(testKey, ts, "nonce-0001", body)
	other := Sign([]byte("another-key-another-key-another-k"), ts, "nonce-0001", body)
	old := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10)

	cases := []struct {
		name           string
		ts, nonce, sig string
		body           []byte
		want           error
	}{
		{"good", ts, "nonce-0001", good, body, nil},
		{"sha256= prefix", ts, "nonce-0002", "sha256=" + Sign(testKey, ts, "nonce-0002", body), body, nil},
		{"uppercase hex", ts, "nonce-0003", strings.ToUpper(Sign(testKey, ts, "nonce-0003", body)), body, nil},
		{"replayed", ts, "nonce-0001", good, body, ErrSignatureReplayed},
		{"other key", ts, "nonce-0004", other, body, ErrSignatureInvalid},
		{"body changed", ts, "nonce-0005", Sign(testKey, ts, "nonce-0005", body), append(bytes.Clone(body), ' '), ErrSignatureInvalid},
		{"nonce changed", ts, "nonce-0006", Sign(testKey, ts, "nonce-0007", body), body, ErrSignatureInvalid},
		{"too old", old, "nonce-0008", Sign(testKey, old, "nonce-0008", body), body, ErrSignatureStale},
		{"from the future", future, "nonce-0009", Sign(testKey, future, "nonce-0009", body), body, ErrSignatureStale},
		{"missing sig", ts, "nonce-0010", "", body, ErrSignatureMissing},
		{"missing ts", "", "nonce-0011", good, body, ErrSignatureMissing},
		{"ts not a number", "12ab", "nonce-0012", good, body, ErrSignatureMalformed},
		{"ts huge", "99999999999999999999", "nonce-0013", good, body, ErrSignatureMalformed},
		{"short nonce", ts, "n", good, body, ErrSignatureMalformed},
		{"nonce with newline", ts, "nonce\n0014", good, body, ErrSignatureMalformed},
		{"sig not hex", ts, "nonce-0015", strings.Repeat("zz", 32), body, ErrSignatureMalformed},
		{"sig truncated", ts, "nonce-0016", good[:40], body, ErrSignatureMalformed},
	}
	v := newVerifier(t, SigningConfig{})
	for _, tc := range cases {
		err := v.Verify(now, tc.ts, tc.nonce, tc.sig, tc.body)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), string(testKey)) {
			t.Errorf("%s: error leaks the key", tc.name)
		}
	}
	// A refused (bad) signature does not burn the nonce.
	if err := v.Verify(now, ts, "nonce-0004", Sign(testKey, ts, "nonce-0004", body), body); err != nil {
		t.Fatalf("nonce used by a forged request was burnt: %v", err)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	newKey := []byte("fedcba9876543210fedcba9876543210")
	v := newVerifier(t, SigningConfig{Keys: [][]byte{newKey, testKey}})
	ts := strconv.FormatInt(t0.Unix(), 10)
	for i, k := range [][]byte{testKey, newKey} {
		n := "rotation-" + strconv.Itoa(i)
		if err := v.Verify(t0, ts, n, Sign(k, ts, n, []byte("x")), []byte("x")); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
}

func TestVerifyFrame(t *testing.T) {
	v := newVerifier(t, SigningConfig{})
	ts := strconv.FormatInt(t0.Unix(), 10)
	tmpl := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.erlmcp/signature":{"timestamp":"` + ts + `","nonce":"frame-nonce-1","signature":"%s"}}}}`
	unsigned := strings.Replace(tmpl, "%s", "", 1)
	sig := Sign(testKey, ts, "frame-nonce-1", []byte(unsigned))
	frame := []byte(strings.Replace(tmpl, "%s", sig, 1))
	if err := v.VerifyFrame(t0, ts, "frame-nonce-1", sig, frame); err != nil {
		t.Fatalf("good frame: %v", err)
	}
	if err := v.VerifyFrame(t0, ts, "frame-nonce-1", sig, frame); !errors.Is(err, ErrSignatureReplayed) {
		t.Fatalf("replayed frame: %v", err)
	}
	tampered := bytes.Replace(frame, []byte(`"echo"`), []byte(`"rm-rf"`), 1)
	if err := v.VerifyFrame(t0, ts, "frame-nonce-2", sig, tampered); !errors.Is(err, ErrSignatureInvalid) {
		t.Fatalf("tampered frame: %v", err)
	}
	twice := append(bytes.Clone(frame), []byte(sig)...)
	if err := v.VerifyFrame(t0, ts, "frame-nonce-3", sig, twice); !errors.Is(err, ErrSignatureMalformed) {
		t.Fatalf("signature twice: %v", err)
	}
	if err := v.VerifyFrame(t0, ts, "frame-nonce-4", strings.Repeat("a", 64), frame); !errors.Is(err, ErrSignatureMalformed) {
		t.Fatalf("signature absent from frame: %v", err)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	v := newVerifier(t, SigningConfig{MaxNonces: 4 * nonceShards, Skew: time.Minute})
	ts := strconv.FormatInt(t0.Unix(), 10)
	full := 0
	for i := 0; i < 40*nonceShards; i++ {
		n := "bounded-" + strconv.Itoa(i)
		err := v.Verify(t0, ts, n, Sign(testKey, ts, n, nil), nil)
		if errors.Is(err, ErrReplayCacheFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if full == 0 || v.NonceCount() > 4*nonceShards {
		t.Fatalf("cache holds %d nonces with %d refusals; want ≤ %d", v.NonceCount(), full, 4*nonceShards)
	}
	// Once the nonces expire, room comes back.
	later := t0.Add(2 * time.Minute)
	lts := strconv.FormatInt(later.Unix(), 10)
	for i := 0; i < 4; i++ { // 4 per shard fit, so no shard can be full
		n := "later-nonce-" + strconv.Itoa(i)
		if err := v.Verify(later, lts, n, Sign(testKey, lts, n, nil), nil); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	}
}

func TestSigningConfigValidate(t *testing.T) {
	for _, c := range []SigningConfig{{}, {Keys: [][]byte{[]byte("short")}}, {Keys: [][]byte{testKey}, Skew: -1}} {
		err := c.Validate()
		if err == nil {
			t.Errorf("%+v: no error", c)
		} else if strings.Contains(err.Error(), "short") {
			t.Errorf("error leaks key: %v", err)
		}
	}
}
