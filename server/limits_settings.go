package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/erlmcp/erlmcp-go/limits"
)

// RateLimiterSettings is the seed's `rate_limiter` section (5.3). See package limits for
// the arithmetic: a fresh client gets max_requests_per_minute within its first minute,
// at most max_burst of them back to back per burst_interval_ms.
type RateLimiterSettings struct {
	Enabled              bool `yaml:"enabled" json:"enabled"`
	MaxRequestsPerMinute int  `yaml:"max_requests_per_minute" json:"max_requests_per_minute"`
	MaxBurst             int  `yaml:"max_burst" json:"max_burst"`
	BurstIntervalMs      int  `yaml:"burst_interval_ms" json:"burst_interval_ms"`
	CleanupIntervalMs    int  `yaml:"cleanup_interval_ms" json:"cleanup_interval_ms"`
	// GlobalMaxRequestsPerMinute bounds all clients together (0: no global limit).
	GlobalMaxRequestsPerMinute int `yaml:"global_max_requests_per_minute" json:"global_max_requests_per_minute"`
	// KeyBy chooses what a quota belongs to: "principal" (the default; "ip" is the same):
	// the authenticated subject, else the remote address, so a client gains nothing by
	// opening sessions or connections (each initialize counts against the same quota); or
	// "session": each MCP session (and TCP connection) of an unauthenticated client has its
	// own quota, which tells many clients behind one NAT address apart but lets one client
	// multiply its quota by opening sessions. An authenticated client is always keyed by
	// its subject.
	KeyBy string `yaml:"key_by" json:"key_by"`
}

// MemoryGuardSettings is the seed's memory guard (3.4).
type MemoryGuardSettings struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// MemoryLimitBytes is the process's memory budget and the Go soft limit (GOMEMLIMIT).
	// 0: 75% of the cgroup memory limit, or of the machine's memory.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes" json:"memory_limit_bytes"`
	// HighWater and LowWater are fractions of the limit where new work stops and resumes.
	HighWater        float64 `yaml:"high_water" json:"high_water"`
	LowWater         float64 `yaml:"low_water" json:"low_water"`
	SampleIntervalMs int     `yaml:"sample_interval_ms" json:"sample_interval_ms"`
}

// AuthSettings is `auth`: bearer tokens (MCP authorization, OAuth 2.1 resource server).
type AuthSettings struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Resource is this server's canonical URL (e.g. https://mcp.example.com/mcp): JWTs must
	// name it in aud, and /.well-known/oauth-protected-resource announces it.
	Resource string `yaml:"resource" json:"resource"`
	// AuthorizationServers are the issuers clients get tokens from (RFC 9728 metadata).
	AuthorizationServers []string `yaml:"authorization_servers" json:"authorization_servers"`
	// APIKeys are static tokens, by SHA-256 (`printf %s "$TOKEN" | sha256sum`).
	APIKeys []limits.APIKey `yaml:"api_keys" json:"api_keys"`
	JWT     JWTSettings     `yaml:"jwt" json:"jwt"`
	// ToolScopes names the scopes each tool needs; DefaultToolScopes applies to the rest.
	ToolScopes        map[string][]string `yaml:"tool_scopes" json:"tool_scopes"`
	DefaultToolScopes []string            `yaml:"default_tool_scopes" json:"default_tool_scopes"`
	// MTLSScopes are the scopes of a client authenticated by its TLS certificate only.
	MTLSScopes []string `yaml:"mtls_scopes" json:"mtls_scopes"`
}

// JWTSettings is `auth.jwt`.
type JWTSettings struct {
	Enabled    bool     `yaml:"enabled" json:"enabled"`
	Issuer     string   `yaml:"issuer" json:"issuer"`
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// HMACKeys are secret references (file:/path or env:NAME) for HS256.
	HMACKeys      []string `yaml:"hmac_keys" json:"hmac_keys"`
	JWKSFile      string   `yaml:"jwks_file" json:"jwks_file"`
	JWKSURL       string   `yaml:"jwks_url" json:"jwks_url"`
	JWKSRefreshMs int      `yaml:"jwks_refresh_ms" json:"jwks_refresh_ms"`
	LeewayMs      int      `yaml:"leeway_ms" json:"leeway_ms"`
}

// RequestSigningSettings is the seed's request signing (5.1).
type RequestSigningSettings struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// SigningKey is a secret reference: file:/etc/erlmcp/secrets/signing.key or
	// env:ERLMCP_SIGNING_KEY. Never the key itself.
	SigningKey string `yaml:"signing_key" json:"signing_key"`
	// PreviousSigningKey is still accepted while clients move to a new key.
	PreviousSigningKey string `yaml:"previous_signing_key" json:"previous_signing_key"`
	// SigningAlgorithm must be hmac_sha256.
	SigningAlgorithm string `yaml:"signing_algorithm" json:"signing_algorithm"`
	MaxSkewMs        int    `yaml:"max_skew_ms" json:"max_skew_ms"`
	MaxNonces        int    `yaml:"max_nonces" json:"max_nonces"`
}

// SchemaValidatorSettings is the seed's `schema_validator` (5.4). While enabled (the
// default), tools/call arguments are checked against the tool's inputSchema (a tool opts
// out with ToolOptions.NoValidation) and structured results against its outputSchema; the
// other keys make it stricter.
type SchemaValidatorSettings struct {
	// Enabled: false turns every schema check off for every tool (Config.NoSchemaValidation),
	// reject_unknown_fields and strict_mode included; schemas are still compiled when a
	// tool is registered, so a malformed one is refused either way.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// RejectUnknownFields refuses argument properties the inputSchema does not declare,
	// even where the schema leaves additionalProperties open.
	RejectUnknownFields bool `yaml:"reject_unknown_fields" json:"reject_unknown_fields"`
	// StrictMode applies RejectUnknownFields to nested objects too, and refuses a tool
	// result that declares an outputSchema but carries no structuredContent.
	StrictMode bool `yaml:"strict_mode" json:"strict_mode"`
}

// TLSSettings is `transports.tls` (seed 5.2): TLS on its own port, same protocols as the
// main port (sniffed JSON-RPC lines and HTTP).
type TLSSettings struct {
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Addr    string `yaml:"addr" json:"addr"`
	// CertFile and KeyFile are PEM files; the key must be mode 0600. Reloaded on
	// `erlmcp reload` without dropping connections.
	CertFile string `yaml:"tls_certfile" json:"tls_certfile"`
	KeyFile  string `yaml:"tls_keyfile" json:"tls_keyfile"`
	// CACertFile is the CA bundle that client certificates must chain to (mTLS).
	CACertFile string `yaml:"tls_cacertfile" json:"tls_cacertfile"`
	// Verify is verify_none or verify_peer (ask for a client certificate and check it).
	Verify string `yaml:"tls_verify" json:"tls_verify"`
	// FailIfNoPeerCert refuses clients without a certificate (with verify_peer).
	FailIfNoPeerCert bool `yaml:"tls_fail_if_no_peer_cert" json:"tls_fail_if_no_peer_cert"`
	// MinVersion is "1.3" (default) or "1.2".
	MinVersion string `yaml:"min_version" json:"min_version"`
	// HandshakeTimeoutMs bounds the handshake. Default 10000.
	HandshakeTimeoutMs int `yaml:"handshake_timeout_ms" json:"handshake_timeout_ms"`
	// MaxConns bounds concurrent TLS connections (each holds a goroutine). Default 10000.
	MaxConns int `yaml:"max_conns" json:"max_conns"`
}

func defaultRateLimiter() RateLimiterSettings {
	return RateLimiterSettings{Enabled: true, MaxRequestsPerMinute: limits.DefaultRequestsPerMinute,
		MaxBurst: limits.DefaultMaxBurst, BurstIntervalMs: 100, CleanupIntervalMs: 60000, KeyBy: "principal"}
}

func defaultMemoryGuard() MemoryGuardSettings {
	return MemoryGuardSettings{Enabled: true, HighWater: limits.DefaultHighWater,
		LowWater: limits.DefaultLowWater, SampleIntervalMs: 100}
}

func defaultSchemaValidator() SchemaValidatorSettings {
	return SchemaValidatorSettings{Enabled: true}
}

func defaultRequestSigning() RequestSigningSettings {
	return RequestSigningSettings{SigningAlgorithm: "hmac_sha256", MaxSkewMs: 300000, MaxNonces: limits.DefaultMaxNonces}
}

func defaultTLS() TLSSettings {
	return TLSSettings{Addr: "127.0.0.1:8443", Verify: "verify_none", MinVersion: "1.3",
		HandshakeTimeoutMs: 10000, MaxConns: 10000}
}

// validateSecurity checks the sections of this file and names the first bad key.
func (st *Settings) validateSecurity() error {
	type check struct {
		bad bool
		key string
		why string
	}
	rl, mg, au, rs, tl := &st.RateLimiter, &st.MemoryGuard, &st.Auth, &st.RequestSigning, &st.Transports.TLS
	checks := []check{
		{rl.Enabled && rl.MaxRequestsPerMinute < 1, "rate_limiter.max_requests_per_minute", "must be ≥ 1"},
		{rl.Enabled && rl.MaxBurst < 1, "rate_limiter.max_burst", "must be ≥ 1"},
		{rl.BurstIntervalMs < 0, "rate_limiter.burst_interval_ms", "must be ≥ 0"},
		{rl.CleanupIntervalMs < 0, "rate_limiter.cleanup_interval_ms", "must be ≥ 0"},
		{rl.GlobalMaxRequestsPerMinute < 0, "rate_limiter.global_max_requests_per_minute", "must be ≥ 0 (0: none)"},
		{!oneOf(rl.KeyBy, "", "principal", "ip", "session"), "rate_limiter.key_by", "must be principal, ip or session"},
		{mg.MemoryLimitBytes < 0 || (mg.MemoryLimitBytes > 0 && mg.MemoryLimitBytes < 16<<20), "memory_guard.memory_limit_bytes", "must be 0 (auto) or ≥ 16 MiB"},
		{mg.HighWater < 0 || mg.HighWater > 1, "memory_guard.high_water", "must be in (0, 1]"},
		{mg.LowWater < 0 || mg.LowWater > 1 || (mg.HighWater > 0 && mg.LowWater >= mg.HighWater), "memory_guard.low_water", "must be below high_water"},
		{mg.SampleIntervalMs < 0, "memory_guard.sample_interval_ms", "must be ≥ 0"},
		{au.Enabled && au.Resource == "" && au.JWT.Enabled, "auth.resource", "must be this server's URL when auth.jwt is enabled (JWT aud is checked against it)"},
		{au.Enabled && len(au.APIKeys) == 0 && !au.JWT.Enabled && tl.Verify != "verify_peer", "auth", "is enabled but has no api_keys, no jwt and no mTLS (transports.tls.tls_verify: verify_peer)"},
		{au.JWT.Enabled && len(au.JWT.HMACKeys) == 0 && au.JWT.JWKSFile == "" && au.JWT.JWKSURL == "", "auth.jwt", "needs hmac_keys, jwks_file or jwks_url"},
		{au.JWT.LeewayMs < 0 || au.JWT.JWKSRefreshMs < 0, "auth.jwt.leeway_ms", "durations must be ≥ 0"},
		{rs.Enabled && rs.SigningKey == "", "request_signing.signing_key", "must name the key: file:/path or env:NAME"},
		{rs.Enabled && !strings.EqualFold(rs.SigningAlgorithm, "hmac_sha256"), "request_signing.signing_algorithm", "must be hmac_sha256"},
		{rs.MaxSkewMs < 0, "request_signing.max_skew_ms", "must be ≥ 0"},
		{rs.MaxNonces < 0, "request_signing.max_nonces", "must be ≥ 0"},
		{tl.Enabled && (tl.CertFile == "" || tl.KeyFile == ""), "transports.tls.tls_certfile", "and tls_keyfile are required when TLS is enabled"},
		{tl.Enabled && tl.Addr == "", "transports.tls.addr", "must be host:port"},
		{!oneOf(tl.Verify, "", "verify_none", "verify_peer"), "transports.tls.tls_verify", "must be verify_none or verify_peer"},
		{tl.Verify == "verify_peer" && tl.Enabled && tl.CACertFile == "", "transports.tls.tls_cacertfile", "is required with tls_verify: verify_peer"},
		{!oneOf(tl.MinVersion, "", "1.2", "1.3"), "transports.tls.min_version", "must be 1.2 or 1.3"},
		{tl.HandshakeTimeoutMs < 0, "transports.tls.handshake_timeout_ms", "must be ≥ 0"},
		{tl.MaxConns < 0, "transports.tls.max_conns", "must be ≥ 0"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("config: %s %s", c.key, c.why)
		}
	}
	for i, k := range au.APIKeys {
		if err := (&limits.AuthConfig{APIKeys: []limits.APIKey{k}}).Validate(); err != nil {
			return fmt.Errorf("config: auth.api_keys[%d]: %v", i, strings.TrimPrefix(err.Error(), "limits: auth api_keys[0]"))
		}
	}
	for _, a := range au.JWT.Algorithms {
		if !slices.Contains([]string{"HS256", "RS256", "ES256"}, a) {
			return fmt.Errorf("config: auth.jwt.algorithms: %q is not one of HS256, RS256, ES256", a)
		}
	}
	return nil
}

// rateLimitConfig converts the section (nil when disabled).
func (rl RateLimiterSettings) config() *limits.RateLimitConfig {
	if !rl.Enabled {
		return nil
	}
	return &limits.RateLimitConfig{
		RequestsPerMinute:       rl.MaxRequestsPerMinute,
		MaxBurst:                rl.MaxBurst,
		BurstInterval:           time.Duration(rl.BurstIntervalMs) * time.Millisecond,
		GlobalRequestsPerMinute: rl.GlobalMaxRequestsPerMinute,
		CleanupInterval:         time.Duration(rl.CleanupIntervalMs) * time.Millisecond,
	}
}

func (mg MemoryGuardSettings) config() *limits.MemoryGuardConfig {
	if !mg.Enabled {
		return nil
	}
	return &limits.MemoryGuardConfig{
		LimitBytes:     mg.MemoryLimitBytes,
		HighWater:      mg.HighWater,
		LowWater:       mg.LowWater,
		SampleInterval: time.Duration(mg.SampleIntervalMs) * time.Millisecond,
	}
}

// config loads the secrets the section names and returns the auth configuration (nil when
// disabled or mTLS-only).
func (au AuthSettings) config() (*limits.AuthConfig, error) {
	if !au.Enabled || (len(au.APIKeys) == 0 && !au.JWT.Enabled) {
		return nil, nil
	}
	cfg := &limits.AuthConfig{APIKeys: au.APIKeys}
	if j := au.JWT; j.Enabled {
		jc := &limits.JWTConfig{
			Audience:    au.Resource,
			Issuer:      j.Issuer,
			Algorithms:  j.Algorithms,
			JWKSFile:    j.JWKSFile,
			JWKSURL:     j.JWKSURL,
			JWKSRefresh: time.Duration(j.JWKSRefreshMs) * time.Millisecond,
			Leeway:      time.Duration(j.LeewayMs) * time.Millisecond,
		}
		for i, ref := range j.HMACKeys {
			k, err := limits.LoadSecret(ref)
			if err != nil {
				return nil, fmt.Errorf("config: auth.jwt.hmac_keys[%d]: %w", i, err)
			}
			jc.HMACKeys = append(jc.HMACKeys, k)
		}
		cfg.JWT = jc
	}
	return cfg, nil
}

func (rs RequestSigningSettings) config() (*limits.SigningConfig, error) {
	if !rs.Enabled {
		return nil, nil
	}
	cfg := &limits.SigningConfig{Skew: time.Duration(rs.MaxSkewMs) * time.Millisecond, MaxNonces: rs.MaxNonces}
	for _, kv := range []struct{ key, ref string }{{"signing_key", rs.SigningKey}, {"previous_signing_key", rs.PreviousSigningKey}} {
		if kv.ref == "" {
			continue
		}
		k, err := limits.LoadSecret(kv.ref)
		if err != nil {
			return nil, fmt.Errorf("config: request_signing.%s: %w", kv.key, err)
		}
		cfg.Keys = append(cfg.Keys, k)
	}
	return cfg, nil
}
