package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
	"github.com/valyala/fasthttp"
)

// testPKI is a CA with a server and a client certificate, written to a temp dir.
type testPKI struct {
	dir                       string
	caCert                    *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	caFile, certFile, keyFile string
	client                    tls.Certificate
	pool                      *x509.CertPool
	// validFor is how long certificates issued from now on stay valid (default an hour).
	validFor time.Duration
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "erlmcp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caFile = filepath.Join(p.dir, "ca-bundle.crt")
	writePEM(t, p.caFile, "CERTIFICATE", der, 0o644)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	p.certFile, p.keyFile = filepath.Join(p.dir, "server.crt"), filepath.Join(p.dir, "server.key")
	p.writeServerCert(t, "server-1")
	cder, ckey := p.issue(t, "client-svc", 3, x509.ExtKeyUsageClientAuth)
	p.client = tls.Certificate{Certificate: [][]byte{cder}, PrivateKey: ckey}
	return p
}

func (p *testPKI) issue(t *testing.T, cn string, serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	validFor := p.validFor
	if validFor == 0 {
		validFor = time.Hour
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// writeServerCert (re)writes server.crt and server.key with a new certificate named cn.
func (p *testPKI) writeServerCert(t *testing.T, cn string) {
	t.Helper()
	der, key := p.issue(t, cn, time.Now().UnixNano(), x509.ExtKeyUsageServerAuth)
	kder, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, p.certFile, "CERTIFICATE", der, 0o644)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", kder, 0o600)
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// startTLS serves a demo server (with lim's middleware when given) on a TLS listener.
func startTLS(t *testing.T, p *testPKI, tweak func(*TLSConfig), lim *Limits) (*TLSListener, *Server) {
	t.Helper()
	cfg := Config{}
	if lim != nil {
		cfg.Middleware = []Middleware{lim.Middleware()}
	}
	s := newDemoServer(t, cfg)
	h := s.NewHTTP(HTTPConfig{})
	h.Handle("/hello", func(ctx *fasthttp.RequestCtx) { ctx.WriteString("hello over tls") })
	tc := TLSConfig{Addr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile, CACertFile: p.caFile,
		Line: LineConfigFor(s, h.ServeConn)}
	if tweak != nil {
		tweak(&tc)
	}
	ln, err := ListenTLS(tc)
	if err != nil {
		t.Fatal(err)
	}
	go ln.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ln.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		h.Close()
		s.Shutdown(ctx)
	})
	return ln, s
}

// tlsCall dials, sends one JSON-RPC line and reads the reply.
func tlsCall(addr string, conf *tls.Config, line string) (msg, *tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return msg{}, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return msg{}, nil, err
	}
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return msg{}, nil, err
	}
	var m msg
	err = json.Unmarshal(b, &m)
	st := c.ConnectionState()
	return m, &st, err
}

const pingLine = `{"jsonrpc":"2.0","id":1,"method":"ping"}`

func TestTLS13Only(t *testing.T) {
	p := newPKI(t)
	ln, _ := startTLS(t, p, nil, nil)
	addr := ln.Addr().String()
	m, st, err := tlsCall(addr, &tls.Config{RootCAs: p.pool}, pingLine)
	if err != nil || m.Error != nil || string(m.Result) != "{}" {
		t.Fatalf("ping over TLS: %+v %v", m, err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %x, want TLS 1.3", st.Version)
	}
	if _, _, err := tlsCall(addr, &tls.Config{RootCAs: p.pool, MaxVersion: tls.VersionTLS12}, pingLine); err == nil {
		t.Fatal("a TLS 1.2 client was served by a 1.3-only listener")
	}
	// HTTP is sniffed on the TLS port as on the plain one.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	resp, err := hc.Get("https://" + addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello over tls" {
		t.Fatalf("HTTP over TLS: %d %q", resp.StatusCode, body)
	}
}

func TestTLS12Allowed(t *testing.T) {
	p := newPKI(t)
	ln, _ := startTLS(t, p, func(c *TLSConfig) { c.MinVersion = tls.VersionTLS12 }, nil)
	_, st, err := tlsCall(ln.Addr().String(), &tls.Config{RootCAs: p.pool, MaxVersion: tls.VersionTLS12}, pingLine)
	if err != nil || st.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 with min_version 1.2: %v", err)
	}
}

func TestMTLS(t *testing.T) {
	p := newPKI(t)
	lim, err := NewLimits(LimitsConfig{AuthRequired: true, MTLSScopes: []string{"tools:basic"}, DefaultToolScopes: []string{"tools:basic"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	ln, _ := startTLS(t, p, func(c *TLSConfig) {
		c.VerifyPeer, c.FailIfNoPeerCert, c.MTLSScopes = true, true, []string{"tools:basic"}
	}, lim)
	addr := ln.Addr().String()
	// No client certificate: the handshake (or, in TLS 1.3, the first read) fails.
	if m, _, err := tlsCall(addr, &tls.Config{RootCAs: p.pool}, pingLine); err == nil {
		t.Fatalf("client without certificate was served: %+v", m)
	}
	// A certificate from another CA: refused too.
	other := newPKI(t)
	if _, _, err := tlsCall(addr, &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{other.client}}, pingLine); err == nil {
		t.Fatal("client certificate from an unknown CA was accepted")
	}
	// With the right certificate the session is authenticated as the certificate's subject.
	conf := &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}}
	m, _, err := tlsCall(addr, conf, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	if err != nil || m.Error != nil {
		t.Fatalf("mTLS client: %+v %v", m.Error, err)
	}
}

func TestTLSReload(t *testing.T) {
	p := newPKI(t)
	ln, _ := startTLS(t, p, nil, nil)
	addr := ln.Addr().String()
	cn := func() string {
		_, st, err := tlsCall(addr, &tls.Config{RootCAs: p.pool}, pingLine)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "server-1" {
		t.Fatalf("first certificate %q", got)
	}
	// Keep a connection open across the reload: it must keep working.
	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	p.writeServerCert(t, "server-2")
	if err := ln.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "server-2" {
		t.Fatalf("after reload the listener serves %q, want server-2", got)
	}
	old.SetDeadline(time.Now().Add(5 * time.Second))
	old.Write([]byte(pingLine + "\n"))
	if line, err := bufio.NewReader(old).ReadString('\n'); err != nil || !strings.Contains(line, `"result"`) {
		t.Fatalf("connection made before the reload: %q %v", line, err)
	}
	// A broken file on reload keeps the working certificate.
	os.WriteFile(p.certFile, []byte("garbage"), 0o644)
	if err := ln.Reload(); err == nil {
		t.Fatal("reload of a garbage certificate succeeded")
	}
	if got := cn(); got != "server-2" {
		t.Fatalf("after a failed reload: %q", got)
	}
}

func TestTLSRefusesBadFiles(t *testing.T) {
	p := newPKI(t)
	s := New(Config{})
	line := LineConfigFor(s, nil)
	os.Chmod(p.keyFile, 0o644)
	_, err := ListenTLS(TLSConfig{Addr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile, Line: line})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(p.keyFile, 0o600)
	_, err = ListenTLS(TLSConfig{Addr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile, Line: line, VerifyPeer: true, CACertFile: p.certFile + ".missing"})
	if err == nil || !strings.Contains(err.Error(), "tls_cacertfile") {
		t.Fatalf("missing CA: %v", err)
	}
}

func TestTLSMemoryGuardRefusesConns(t *testing.T) {
	p := newPKI(t)
	admit := false
	ln, _ := startTLS(t, p, func(c *TLSConfig) { c.Admit = func() bool { return admit } }, nil)
	if _, _, err := tlsCall(ln.Addr().String(), &tls.Config{RootCAs: p.pool}, pingLine); err == nil {
		t.Fatal("connection served while the memory guard refuses new connections")
	}
}

// startSecDaemon starts a daemon on loopback ports with tweaked default settings.
func startSecDaemon(t *testing.T, tweak func(*Settings)) *Daemon {
	t.Helper()
	st := DefaultSettings()
	st.Transports.TCP.Addr = "127.0.0.1:0"
	// The metrics listener (when the build has one) must not take the fixed port 9090.
	_ = st.decode(strings.NewReader("observability:\n  metrics:\n    addr: 127.0.0.1:0\n"))
	tweak(&st)
	d, err := NewDaemon(st, BuildInfo{Version: "test"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

func TestDaemonTLS(t *testing.T) {
	p := newPKI(t)
	d := startSecDaemon(t, func(st *Settings) {
		st.Transports.TLS = TLSSettings{Enabled: true, Addr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile,
			MinVersion: "1.3", Verify: "verify_none"}
		st.RateLimiter.MaxRequestsPerMinute = 3
	})
	addr := d.TLSAddr().String()
	for i := 0; i < 3; i++ {
		if m, _, err := tlsCall(addr, &tls.Config{RootCAs: p.pool}, pingLine); err != nil || m.Error != nil {
			t.Fatalf("ping %d over the daemon's TLS port: %+v %v", i, m, err)
		}
	}
	_ = limits.ScopeKey
	if err := d.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if d.Limits().RateLimiter() == nil || d.Limits().MemoryGuard() == nil {
		t.Fatal("daemon defaults: rate limiter and memory guard should be on")
	}
}

// TestDaemonTLSMetrics reads the TLS listener's series from the daemon's metrics listener:
// erlmcp_tls_certificate_expiry_timestamp_seconds is the served certificate's NotAfter and
// follows a reload (not a failed one), and erlmcp_connections_active{transport="tls"} counts
// open TLS connections.
func TestDaemonTLSMetrics(t *testing.T) {
	p := newPKI(t)
	d := startSecDaemon(t, func(st *Settings) {
		st.Transports.TLS = TLSSettings{Enabled: true, Addr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile,
			MinVersion: "1.3", Verify: "verify_none"}
	})
	addr := d.TLSAddr().String()
	served := func() int64 {
		_, st, err := tlsCall(addr, &tls.Config{RootCAs: p.pool}, pingLine)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].NotAfter.Unix()
	}
	expiry := func() int64 {
		fams, _ := scrape(t, d)
		if f := fams[metricTLSExpiry]; f == nil || f.typ != "GAUGE" {
			t.Fatalf("%s missing or not a gauge: %+v", metricTLSExpiry, f)
		}
		return int64(value(t, fams, metricTLSExpiry))
	}
	if got, want := expiry(), served(); got != want {
		t.Fatalf("%s = %d, the served certificate expires at %d", metricTLSExpiry, got, want)
	}

	p.validFor = 90 * 24 * time.Hour // the renewed certificate
	p.writeServerCert(t, "server-renewed")
	if err := d.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	renewed := served()
	if got := expiry(); got != renewed || renewed < time.Now().Add(89*24*time.Hour).Unix() {
		t.Fatalf("after reload: %s = %d, served certificate expires at %d (want ~90 days ahead)", metricTLSExpiry, got, renewed)
	}
	os.WriteFile(p.certFile, []byte("garbage"), 0o644)
	if err := d.ReloadTLS(); err == nil {
		t.Fatal("reload of a garbage certificate succeeded")
	}
	if got := expiry(); got != renewed {
		t.Fatalf("after a failed reload: %s = %d, want the certificate still served (%d)", metricTLSExpiry, got, renewed)
	}

	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		fams, _ := scrape(t, d)
		if n := value(t, fams, metricConnections, "transport", "tls"); n == 1 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf(`%s{transport="tls"} = %v with one TLS connection open`, metricConnections, n)
		}
	}
}

// TestOpenSSLHandshake is the issue's check, with the openssl binary when there is one:
// `openssl s_client -connect … -tls1_3` completes a handshake, -tls1_2 does not.
func TestOpenSSLHandshake(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	p := newPKI(t)
	ln, _ := startTLS(t, p, nil, nil)
	run := func(version string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", ln.Addr().String(), version, "-CAfile", p.caFile)
		cmd.Stdin = strings.NewReader(pingLine + "\n")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := run("-tls1_3"); !strings.Contains(out, "TLSv1.3") || !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Fatalf("openssl -tls1_3:\n%s", out)
	}
	if out := run("-tls1_2"); !strings.Contains(out, "alert protocol version") {
		t.Fatalf("openssl -tls1_2 completed a handshake with a 1.3-only listener:\n%s", out)
	}
}

// TestDaemonReloadLimits: `erlmcp reload` (the control socket's reload, which re-reads the
// config file) applies the rate limiter's quota and the memory guard's limit live; turning
// the limiter off is reported as needing a restart and changes nothing.
func TestDaemonReloadLimits(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "erlmcp.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rate_limiter:\n  max_requests_per_minute: 2\n  max_burst: 100\n")
	d, sock := startControlDaemon(t, cfg)
	c := dial(t, d.TCPAddr().String())
	c.call("ping", nil)
	c.call("ping", nil)
	wantError(t, c.call("ping", nil), -32003, "2 requests per minute")

	write("rate_limiter:\n  max_requests_per_minute: 10\n  max_burst: 100\nmemory_guard:\n  memory_limit_bytes: 1073741824\n  high_water: 0.9\n")
	var rep ReloadReport
	controlOK(t, sock, "reload", &rep)
	if len(rep.Restart) != 0 || len(rep.Applied) != 3 {
		t.Fatalf("reload report: %+v", rep)
	}
	if m := c.call("ping", nil); m.Error != nil {
		t.Fatalf("after raising the quota: %s", m.Error.Message)
	}
	if l, high, _ := d.Limits().MemoryGuard().Limit(); l != 1<<30 || high != int64(float64(l)*0.9) {
		t.Fatalf("memory limit %d, high-water mark %d", l, high)
	}

	write("rate_limiter:\n  enabled: false\n  max_requests_per_minute: 10\n  max_burst: 100\nmemory_guard:\n  memory_limit_bytes: 1073741824\n  high_water: 0.9\n")
	rep = ReloadReport{}
	controlOK(t, sock, "reload", &rep)
	if len(rep.Restart) != 1 || rep.Restart[0].Key != "rate_limiter.enabled" || len(rep.Applied) != 0 {
		t.Fatalf("reload report: %+v", rep)
	}
	if d.Limits().RateLimiter() == nil {
		t.Fatal("the rate limiter was turned off by a reload")
	}
}
