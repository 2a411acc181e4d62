package server

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTPSettings is `transports.http`: Streamable HTTP on the main port (sniffed from the
// first bytes of a connection), plus the legacy HTTP+SSE endpoints.
type HTTPSettings struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Path is the Streamable HTTP endpoint.
	Path string `yaml:"path" json:"path"`
	// AllowedOrigins are Origin values accepted besides loopback ones ("*": any).
	AllowedOrigins []string `yaml:"allowed_origins" json:"allowed_origins"`
	// AllowedHosts are Host names accepted besides loopback ones under DNS-rebinding
	// protection.
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts"`
	// DNSRebindingProtection: auto (on when the main port binds loopback), on, off.
	DNSRebindingProtection string `yaml:"dns_rebinding_protection" json:"dns_rebinding_protection"`
	// MaxBody bounds a request body in bytes; 0 means message_size.max_request_size.
	MaxBody int `yaml:"max_body" json:"max_body"`
	// SessionIdleTimeoutMs ends sessions with no traffic and no open stream for this long.
	SessionIdleTimeoutMs int `yaml:"session_idle_timeout_ms" json:"session_idle_timeout_ms"`
	// EventStoreSize bounds the events kept per SSE stream for Last-Event-ID resumption.
	EventStoreSize int `yaml:"event_store_size" json:"event_store_size"`
	// Stateless issues no Mcp-Session-Id (2026-07-28 requests are stateless regardless).
	Stateless bool `yaml:"stateless" json:"stateless"`
	// JSONResponse answers every POST with application/json, never SSE.
	JSONResponse bool `yaml:"json_response" json:"json_response"`
	// SSERetryMs is the retry hint sent on SSE streams.
	SSERetryMs int `yaml:"sse_retry_ms" json:"sse_retry_ms"`
	// SSEKeepaliveMs is the interval of keep-alive comments on idle SSE streams.
	SSEKeepaliveMs int `yaml:"sse_keepalive_ms" json:"sse_keepalive_ms"`
	// LegacySSE serves the 2024-11-05 HTTP+SSE transport at /sse and /message.
	LegacySSE bool `yaml:"legacy_sse" json:"legacy_sse"`
	// ReadTimeoutMs bounds reading one request; IdleTimeoutMs keep-alive idleness.
	ReadTimeoutMs int `yaml:"read_timeout_ms" json:"read_timeout_ms"`
	IdleTimeoutMs int `yaml:"idle_timeout_ms" json:"idle_timeout_ms"`
}

func defaultHTTPSettings() HTTPSettings {
	return HTTPSettings{
		Enabled:                true,
		Path:                   "/mcp",
		DNSRebindingProtection: "auto",
		SessionIdleTimeoutMs:   600000,
		EventStoreSize:         256,
		SSERetryMs:             1000,
		SSEKeepaliveMs:         15000,
		LegacySSE:              true,
		ReadTimeoutMs:          30000,
		IdleTimeoutMs:          120000,
	}
}

func (hs *HTTPSettings) validate() error {
	checks := []struct {
		bad      bool
		key, why string
	}{
		{hs.Enabled && !strings.HasPrefix(hs.Path, "/"), "transports.http.path", "must start with /"},
		{!oneOf(hs.DNSRebindingProtection, "auto", "on", "off"), "transports.http.dns_rebinding_protection", "must be auto, on or off"},
		{hs.MaxBody < 0, "transports.http.max_body", "must be ≥ 0 (0: message_size.max_request_size)"},
		{hs.SessionIdleTimeoutMs < 0, "transports.http.session_idle_timeout_ms", "must be ≥ 0 (0: never)"},
		{hs.EventStoreSize < 1, "transports.http.event_store_size", "must be ≥ 1"},
		{hs.SSERetryMs < 1, "transports.http.sse_retry_ms", "must be ≥ 1"},
		{hs.SSEKeepaliveMs < 1, "transports.http.sse_keepalive_ms", "must be ≥ 1"},
		{hs.ReadTimeoutMs < 0, "transports.http.read_timeout_ms", "must be ≥ 0"},
		{hs.IdleTimeoutMs < 0, "transports.http.idle_timeout_ms", "must be ≥ 0"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("config: %s %s", c.key, c.why)
		}
	}
	return nil
}

// httpConfig turns the settings into an HTTPConfig for a main port bound at addr.
func (st *Settings) httpConfig(addr string) HTTPConfig {
	hs := st.Transports.HTTP
	maxBody := hs.MaxBody
	if maxBody == 0 {
		maxBody = st.MessageSize.MaxRequestSize
	}
	idle := time.Duration(hs.SessionIdleTimeoutMs) * time.Millisecond
	if hs.SessionIdleTimeoutMs == 0 {
		idle = -1
	}
	protect := strings.EqualFold(hs.DNSRebindingProtection, "on")
	if strings.EqualFold(hs.DNSRebindingProtection, "auto") {
		protect = isLoopbackAddr(addr)
	}
	return HTTPConfig{
		Path:                   hs.Path,
		AllowedOrigins:         hs.AllowedOrigins,
		AllowedHosts:           hs.AllowedHosts,
		DNSRebindingProtection: protect,
		MaxBody:                maxBody,
		SessionIdleTimeout:     idle,
		EventStoreSize:         hs.EventStoreSize,
		Stateless:              hs.Stateless,
		JSONResponse:           hs.JSONResponse,
		SSERetry:               time.Duration(hs.SSERetryMs) * time.Millisecond,
		SSEKeepAlive:           time.Duration(hs.SSEKeepaliveMs) * time.Millisecond,
		LegacySSE:              hs.LegacySSE,
		ReadTimeout:            time.Duration(hs.ReadTimeoutMs) * time.Millisecond,
		IdleTimeout:            time.Duration(hs.IdleTimeoutMs) * time.Millisecond,
		ReleaseIdleBuffers:     st.Hibernation.Enabled,
	}
}

// isLoopbackAddr reports whether host:port binds only loopback ("" host means all
// interfaces, so not loopback).
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return host != "" && isLoopbackName(host)
}

// httpHook is the loop.Config.HTTP hook of the main port: sniffed HTTP connections go to
// fasthttp. nil when transports.http is off, so every connection speaks lines.
func (d *Daemon) httpHook() func(net.Conn) {
	if d.http == nil {
		return nil
	}
	if m := d.Metrics(); m != nil {
		// HTTP bytes are counted on the connection, so erlmcp_bytes_*_total{transport="http"}
		// covers headers, bodies and SSE streams alike.
		return func(c net.Conn) { d.http.ServeConn(m.CountConn(c, "http")) }
	}
	return d.http.ServeConn
}

// HandleHTTP mounts h at the exact path on the main port's HTTP side (health, readiness,
// /api/ping, …). The MCP endpoint paths cannot be replaced. Safe before or after Start;
// a no-op when transports.http is off.
func (d *Daemon) HandleHTTP(path string, h fasthttp.RequestHandler) {
	if d.http != nil {
		d.http.Handle(path, h)
	}
}

// HTTP returns the HTTP side of the main port, or nil when transports.http is off.
func (d *Daemon) HTTP() *HTTP { return d.http }
