package limits

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// FuzzParseJWKS: any key set is parsed or refused, never a panic.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"` + "AQAB" + `","e":"AQAB","kid":"x"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseJWKS(b)
	})
}

// FuzzAuthenticate: any bearer token is accepted only if it is a configured key or a valid
// JWT; nothing panics.
func FuzzAuthenticate(f *testing.F) {
	a, err := NewAuthenticator(AuthConfig{
		APIKeys: []APIKey{{SHA256: sha("k"), Subject: "s"}},
		JWT:     &JWTConfig{Audience: "https://x", HMACKeys: [][]byte{hmacKey}},
	})
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	f.Add("k")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := a.Authenticate(context.Background(), tok, t0)
		if err == nil && tok != "k" {
			t.Fatalf("token %q accepted as %+v", tok, p)
		}
	})
}

// FuzzVerifyFrame: a frame is accepted only with a signature made with the key.
func FuzzVerifyFrame(f *testing.F) {
	v, err := NewVerifier(SigningConfig{Keys: [][]byte{testKey}})
	if err != nil {
		f.Fatal(err)
	}
	ts := strconv.FormatInt(t0.Unix(), 10)
	f.Add([]byte(`{"a":1}`), "nonce-123456", Sign(testKey, ts, "nonce-123456", []byte(`{"a":1}`)))
	f.Add([]byte(``), "", "")
	f.Fuzz(func(t *testing.T, frame []byte, nonce, sig string) {
		err := v.VerifyFrame(t0.Add(time.Duration(len(frame))), ts, nonce, sig, frame)
		_ = err // any outcome but a panic; acceptance needs the key (checked by TestVerifyFrame)
	})
}
