package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erlmcp/erlmcp-go/loop"
)

// TLS listener defaults.
const (
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultTLSMaxConns bounds TLS connections. Each costs a goroutine (≥ 8 KiB of stack)
	// plus crypto/tls's record buffers (up to ~2×16 KiB while busy) and the line reader's
	// buffer, ~40 KiB when active against ~1 KiB for an idle netpoll connection on the
	// plain port: 10,000 TLS clients can cost ~400 MiB. For 100K sessions, terminate TLS
	// in front (a load balancer) and use the plain port, or raise this knowing the cost.
	DefaultTLSMaxConns = 10000
)

// TLSConfig configures a TLSListener.
type TLSConfig struct {
	// Addr is host:port to bind (e.g. "0.0.0.0:8443"); ":0" picks a free port.
	Addr string
	// CertFile and KeyFile are the PEM certificate chain and private key. The key file must
	// not be readable by group or others.
	CertFile, KeyFile string
	// CACertFile is the PEM bundle client certificates must chain to (mTLS).
	CACertFile string
	// VerifyPeer asks clients for a certificate and verifies any that is sent
	// (tls_verify: verify_peer); FailIfNoPeerCert also refuses clients that send none.
	VerifyPeer       bool
	FailIfNoPeerCert bool
	// MinVersion is tls.VersionTLS13 unless set (tls.VersionTLS12 allows 1.2 clients).
	MinVersion uint16
	// HandshakeTimeout bounds the handshake. Default DefaultTLSHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxConns bounds concurrent TLS connections; more are closed at accept.
	// Default DefaultTLSMaxConns.
	MaxConns int
	// Line is the line-protocol configuration (Handler, HTTP hook, frame limit, timeouts)
	// every accepted connection is served with, as on the plain port.
	Line loop.Config
	// MTLSScopes are the scopes of a client authenticated by its certificate.
	MTLSScopes []string
	// Admit, if set, is asked before serving a new connection (the memory guard).
	Admit func() bool
	// Logger receives accept and handshake failures (at Debug) and reloads. Default: discarded.
	Logger *slog.Logger
}

// TLSListener serves the main port's protocols (newline JSON-RPC and sniffed HTTP) over
// TLS. netpoll has no TLS, so it runs crypto/tls on a standard listener: each connection
// handshakes and is then served by loop.ServeStream on its own goroutine (see
// DefaultTLSMaxConns for what that costs). Certificates are reloaded without a restart by
// Reload; connections keep the certificate they were made with.
type TLSListener struct {
	cfg  TLSConfig
	ln   net.Listener
	conf atomic.Pointer[tls.Config] // what new handshakes use; Reload swaps it
	// notAfter is the expiry (Unix seconds) of conf's certificate, for
	// erlmcp_tls_certificate_expiry_timestamp_seconds; stored with conf.
	notAfter atomic.Int64
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	conns  atomic.Int64
	wg     sync.WaitGroup
	once   sync.Once
}

// ListenTLS loads the certificate (and CA bundle), binds cfg.Addr and returns the listener;
// Serve accepts.
func ListenTLS(cfg TLSConfig) (*TLSListener, error) {
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS13
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultTLSMaxConns
	}
	if cfg.Line.Handler == nil {
		return nil, errors.New("server: TLS listener needs Line.Handler")
	}
	t := &TLSListener{cfg: cfg, log: cfg.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	conf, err := t.load()
	if err != nil {
		return nil, err
	}
	t.use(conf)
	ln, err := listenInherited(roleTLS, "tcp", cfg.Addr) // handed over at an upgrade (upgrade.go)
	if err != nil {
		return nil, fmt.Errorf("transports.tls: listening on %s: %w", cfg.Addr, err)
	}
	t.ln = ln
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t, nil
}

// load reads the certificate, key and CA bundle into a fresh tls.Config.
func (t *TLSListener) load() (*tls.Config, error) {
	c := &t.cfg
	if fi, err := os.Stat(c.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("transports.tls.tls_keyfile %s has mode %04o: group or others can read the private key; run chmod 600 %s", c.KeyFile, fi.Mode().Perm(), c.KeyFile)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("transports.tls: loading tls_certfile %s and tls_keyfile %s: %w", c.CertFile, c.KeyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0 leaves it unparsed
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("transports.tls.tls_certfile %s: parsing the certificate: %w", c.CertFile, err)
		}
	}
	conf := &tls.Config{
		MinVersion:   c.MinVersion,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
	}
	if c.VerifyPeer {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("transports.tls.tls_cacertfile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("transports.tls.tls_cacertfile %s holds no PEM certificate", c.CACertFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if c.FailIfNoPeerCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return conf, nil
}

// Reload re-reads the certificate, key and CA bundle; new handshakes use them, existing
// connections are untouched. On error the previous ones stay in use. Safe to call at any
// time (`erlmcp reload`, SIGHUP).
func (t *TLSListener) Reload() error {
	conf, err := t.load()
	if err != nil {
		return err
	}
	t.use(conf)
	t.log.Info("tls certificate reloaded", "certfile", t.cfg.CertFile, "not_after", t.NotAfter().UTC().Format(time.RFC3339))
	return nil
}

// use makes conf the configuration of new handshakes and records its certificate's expiry.
// load has parsed the leaf (tls.LoadX509KeyPair fills Certificate.Leaf since Go 1.23).
func (t *TLSListener) use(conf *tls.Config) {
	if leaf := conf.Certificates[0].Leaf; leaf != nil {
		t.notAfter.Store(leaf.NotAfter.Unix())
	}
	t.conf.Store(conf)
}

// NotAfter returns when the certificate that new handshakes present expires (the leaf's
// NotAfter; it follows Reload). Exported as erlmcp_tls_certificate_expiry_timestamp_seconds.
func (t *TLSListener) NotAfter() time.Time { return time.Unix(t.notAfter.Load(), 0) }

// Addr returns the bound address.
func (t *TLSListener) Addr() net.Addr { return t.ln.Addr() }

// Serve accepts connections until Shutdown; it returns nil then.
func (t *TLSListener) Serve() error {
	base := &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return t.conf.Load(), nil },
	}
	var delay time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning (net/http does the same).
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t.log.Warn("tls accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if t.conns.Load() >= int64(t.cfg.MaxConns) || (t.cfg.Admit != nil && !t.cfg.Admit()) {
			_ = nc.Close() // refused at accept: over max_conns or the memory guard says no
			continue
		}
		t.conns.Add(1)
		t.wg.Add(1)
		go t.serveConn(tls.Server(nc, base))
	}
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func (t *TLSListener) serveConn(tc *tls.Conn) {
	defer t.wg.Done()
	defer t.conns.Add(-1)
	hctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		t.log.Debug("tls handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
		_ = tc.Close()
		return
	}
	cfg := t.cfg.Line
	if p := principalFromCert(tc.ConnectionState(), t.cfg.MTLSScopes); p != nil {
		cfg.Handler = certHandler{Handler: cfg.Handler, p: p}
	}
	if err := loop.ServeStream(t.ctx, cfg, "tls", tc, tc); err != nil && !errors.Is(err, context.Canceled) {
		t.log.Debug("tls connection ended", "remote", tc.RemoteAddr().String(), "err", err)
	}
}

// certHandler gives the session of a connection whose client certificate was verified
// the certificate's principal.
type certHandler struct {
	loop.Handler
	p *Principal
}

func (h certHandler) Open(c *loop.Conn) {
	h.Handler.Open(c)
	if ss, ok := c.Value().(*Session); ok {
		ss.SetPrincipal(h.p)
	}
}

// Conns returns the number of TLS connections open now.
func (t *TLSListener) Conns() int { return int(t.conns.Load()) }

// Shutdown stops accepting, closes the connections (work in flight finishes and replies
// first) and waits for their goroutines, or for ctx. Idempotent.
func (t *TLSListener) Shutdown(ctx context.Context) error {
	t.once.Do(func() {
		t.cancel()
		_ = t.ln.Close()
	})
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transports.tls: waiting for connections to close: %w", ctx.Err())
	}
}

// tlsConfig converts transports.tls into a TLSConfig (without Line, set by the daemon).
func (tl TLSSettings) tlsConfig() TLSConfig {
	c := TLSConfig{
		Addr:             tl.Addr,
		CertFile:         tl.CertFile,
		KeyFile:          tl.KeyFile,
		CACertFile:       tl.CACertFile,
		VerifyPeer:       tl.Verify == "verify_peer",
		FailIfNoPeerCert: tl.FailIfNoPeerCert,
		HandshakeTimeout: time.Duration(tl.HandshakeTimeoutMs) * time.Millisecond,
		MaxConns:         tl.MaxConns,
	}
	if tl.MinVersion == "1.2" {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// LineConfigFor is the line-protocol configuration that serves s, with HTTP connections
// handed to httpConn (e.g. (*HTTP).ServeConn) when it is not nil; for TLSConfig.Line
// outside the daemon (tests, embedding).
func LineConfigFor(s *Server, httpConn func(net.Conn)) loop.Config {
	return loop.Config{Handler: s.LineHandler(), HTTP: httpConn, Logger: s.log}
}
