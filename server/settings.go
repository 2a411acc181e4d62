package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Settings is the daemon's configuration file (etc/erlmcp.yaml), section by section as in
// the seed checklist. Every key has a built-in default (DefaultSettings), so the binary runs
// with no file at all. Durations are integers with a unit suffix in the key (_ms).
type Settings struct {
	Server      ServerSettings      `yaml:"server" json:"server"`
	Transports  TransportSettings   `yaml:"transports" json:"transports"`
	MessageSize MessageSizeSettings `yaml:"message_size" json:"message_size"`
	Hibernation HibernationSettings `yaml:"hibernation" json:"hibernation"`
	Logging     LoggingSettings     `yaml:"logging" json:"logging"`
	// Observability is metrics, health and tracing (metrics_settings.go).
	Observability ObservabilitySettings `yaml:"observability" json:"observability"`
	// Limits and security (limits_settings.go).
	RateLimiter     RateLimiterSettings     `yaml:"rate_limiter" json:"rate_limiter"`
	MemoryGuard     MemoryGuardSettings     `yaml:"memory_guard" json:"memory_guard"`
	Auth            AuthSettings            `yaml:"auth" json:"auth"`
	RequestSigning  RequestSigningSettings  `yaml:"request_signing" json:"request_signing"`
	SchemaValidator SchemaValidatorSettings `yaml:"schema_validator" json:"schema_validator"`
	// Cluster is cluster mode: nodes sharing sessions through Redis (cluster_settings.go).
	Cluster ClusterSettings `yaml:"cluster" json:"cluster"`
}

// ServerSettings is the `server:` section.
type ServerSettings struct {
	// Name is serverInfo.name.
	Name string `yaml:"name" json:"name"`
	// Profile names the deployment profile (ERLMCP_PROFILE): development, production,
	// conformance. It only labels the node, except "conformance", which also registers the
	// conformance suite's fixtures.
	Profile string `yaml:"profile" json:"profile"`
	// Instructions is sent in the initialize result.
	Instructions string `yaml:"instructions" json:"instructions"`
	// StrictLifecycle refuses requests before initialize (see Config.StrictLifecycle).
	StrictLifecycle bool `yaml:"strict_lifecycle" json:"strict_lifecycle"`
	// Demo registers the built-in demo tools, resources and prompts.
	Demo bool `yaml:"demo" json:"demo"`
	// PageSize is the page size of list methods.
	PageSize int `yaml:"page_size" json:"page_size"`
	// Pollers is the number of epoll loops (0: netpoll's default, GOMAXPROCS/20+1).
	Pollers int `yaml:"pollers" json:"pollers"`
	// Workers bounds goroutines running slow handlers; WorkerQueue bounds waiting calls.
	Workers     int `yaml:"workers" json:"workers"`
	WorkerQueue int `yaml:"worker_queue" json:"worker_queue"`
	// ShutdownTimeoutMs bounds the graceful drain on stop.
	ShutdownTimeoutMs int `yaml:"shutdown_timeout_ms" json:"shutdown_timeout_ms"`
	// ClientRequestTimeoutMs bounds server→client requests (sampling, elicitation, roots).
	ClientRequestTimeoutMs int `yaml:"client_request_timeout_ms" json:"client_request_timeout_ms"`
	// ControlSocket is the admin CLI's unix socket (mode 0600; control.go). Empty means
	// $XDG_RUNTIME_DIR/erlmcp.sock, else /tmp/erlmcp-$UID/erlmcp.sock.
	ControlSocket string `yaml:"control_socket" json:"control_socket"`
	// MaxSessions bounds the sessions held at once (TCP, TLS and stdio connections,
	// Streamable HTTP and legacy SSE sessions); a client over it is refused with -32004
	// (HTTP 503) and counted in erlmcp_sessions_refused_total. 0: no bound. The default is
	// twice the 100K sessions a tuned box is sized for (tuning/README.md).
	MaxSessions int `yaml:"max_sessions" json:"max_sessions"`
	// MaxSessionsPerPrincipal bounds the sessions of one principal (the authenticated
	// subject, else the client's address): -32003 (HTTP 429) over it. 0: no bound. The
	// default is above the 12.5K a 100K load test puts on each of its 8 loopback source
	// addresses (bench --source-ips 127.0.0.1-127.0.0.8).
	MaxSessionsPerPrincipal int `yaml:"max_sessions_per_principal" json:"max_sessions_per_principal"`
	// DisabledTools are tool names hidden from tools/list and refused by tools/call;
	// `erlmcp reload` applies changes live.
	DisabledTools []string `yaml:"disabled_tools" json:"disabled_tools"`
}

// TransportSettings is the `transports:` section.
type TransportSettings struct {
	TCP TCPSettings `yaml:"tcp" json:"tcp"`
	// HTTP is Streamable HTTP (and legacy HTTP+SSE) on the main port (http_settings.go).
	HTTP HTTPSettings `yaml:"http" json:"http"`
	// TLS is the TLS 1.3 listener, off until a certificate is configured (limits_settings.go).
	TLS TLSSettings `yaml:"tls" json:"tls"`
}

// TCPSettings is `transports.tcp`: newline-delimited JSON-RPC on the main port.
type TCPSettings struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Addr is host:port; the default binds loopback, production sets 0.0.0.0:8080.
	Addr          string `yaml:"addr" json:"addr"`
	ReadTimeoutMs int    `yaml:"read_timeout_ms" json:"read_timeout_ms"`
	// WriteTimeoutMs is the seed's send_timeout: a reader slower than this is dropped.
	WriteTimeoutMs int `yaml:"write_timeout_ms" json:"write_timeout_ms"`
	// IdleTimeoutMs closes connections with no traffic and no work for this long.
	IdleTimeoutMs int `yaml:"idle_timeout_ms" json:"idle_timeout_ms"`
	// KeepaliveMs is the TCP keepalive period.
	KeepaliveMs int `yaml:"keepalive_ms" json:"keepalive_ms"`
}

// MessageSizeSettings is the seed's `message_size` section.
type MessageSizeSettings struct {
	MaxRequestSize  int `yaml:"max_request_size" json:"max_request_size"`
	MaxResponseSize int `yaml:"max_response_size" json:"max_response_size"`
}

// HibernationSettings is the seed's hibernation (3.2): idle connections give back buffers.
type HibernationSettings struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	AfterMs int  `yaml:"after_ms" json:"after_ms"`
}

// LoggingSettings is the daemon's own log.
type LoggingSettings struct {
	// Level: debug, info, warning, error (ERLMCP_LOG_LEVEL).
	Level string `yaml:"level" json:"level"`
	// Format: text or json.
	Format string `yaml:"format" json:"format"`
	// File: path of the log file; empty logs to stderr.
	File string `yaml:"file" json:"file"`
}

// DefaultSettings returns the embedded defaults.
func DefaultSettings() Settings {
	return Settings{
		Server: ServerSettings{
			Name:                    "erlmcp",
			Profile:                 "development",
			Demo:                    true,
			PageSize:                100,
			Workers:                 256,
			WorkerQueue:             4096,
			ShutdownTimeoutMs:       30000,
			ClientRequestTimeoutMs:  60000,
			MaxSessions:             200000,
			MaxSessionsPerPrincipal: 16384,
		},
		Transports: TransportSettings{
			TCP: TCPSettings{
				Enabled:        true,
				Addr:           "127.0.0.1:8080",
				ReadTimeoutMs:  30000,
				WriteTimeoutMs: 5000,
				IdleTimeoutMs:  600000,
				KeepaliveMs:    15000,
			},
			HTTP: defaultHTTPSettings(),
			TLS:  defaultTLS(),
		},
		MessageSize:     MessageSizeSettings{MaxRequestSize: 10 << 20, MaxResponseSize: 10 << 20},
		Hibernation:     HibernationSettings{Enabled: true, AfterMs: 1000},
		Logging:         LoggingSettings{Level: "info", Format: "text"},
		Observability:   defaultObservability(),
		RateLimiter:     defaultRateLimiter(),
		MemoryGuard:     defaultMemoryGuard(),
		RequestSigning:  defaultRequestSigning(),
		SchemaValidator: defaultSchemaValidator(),
		Cluster:         defaultCluster(),
	}
}

// LoadSettings reads a YAML file over the defaults, then applies environment overrides.
// path "" means defaults and environment only. Unknown keys are errors.
func LoadSettings(path string) (Settings, error) {
	st := DefaultSettings()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return st, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := st.decode(f); err != nil {
			return st, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := st.applyEnv(os.Getenv); err != nil {
		return st, err
	}
	return st, st.Validate()
}

func (st *Settings) decode(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(st); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Set overrides one key given by its dotted path ("transports.tcp.addr") with a YAML
// scalar value, as `erlmcp start -set key=value` does. Unknown keys are errors.
func (st *Settings) Set(key, value string) error {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		if p == "" {
			return fmt.Errorf("config: -set %q: empty key segment", key)
		}
		b.WriteString(strings.Repeat("  ", i))
		b.WriteString(p)
		b.WriteString(":")
		if i < len(parts)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString(" ")
	v, err := yaml.Marshal(value)
	if err != nil {
		return err
	}
	// A value that reads as another YAML scalar (number, bool) is kept as typed.
	if _, err := strconv.ParseFloat(value, 64); err == nil {
		v = []byte(value)
	} else if _, err := strconv.ParseBool(value); err == nil {
		v = []byte(value)
	}
	b.Write(bytes.TrimSpace(v))
	if err := st.decode(strings.NewReader(b.String())); err != nil {
		return fmt.Errorf("config: -set %s: %w", key, err)
	}
	return nil
}

// applyEnv applies the seed's environment variables.
func (st *Settings) applyEnv(getenv func(string) string) error {
	if v := getenv("ERLMCP_PROFILE"); v != "" {
		st.Server.Profile = v
	}
	if v := getenv("ERLMCP_LOG_LEVEL"); v != "" {
		st.Logging.Level = v
	}
	if v := getenv("ERLMCP_HIBERNATION_ENABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("config: ERLMCP_HIBERNATION_ENABLED=%q: want true or false", v)
		}
		st.Hibernation.Enabled = b
	}
	if err := st.Observability.applyEnv(getenv); err != nil {
		return err
	}
	return st.Cluster.applyEnv(getenv)
}

// Validate checks every value and names the first bad key.
func (st *Settings) Validate() error {
	type check struct {
		bad bool
		key string
		why string
	}
	checks := []check{
		{st.Server.Name == "", "server.name", "must not be empty"},
		{st.Server.PageSize < 1, "server.page_size", "must be ≥ 1"},
		{st.Server.Pollers < 0, "server.pollers", "must be ≥ 0"},
		{st.Server.Workers < 1, "server.workers", "must be ≥ 1"},
		{st.Server.WorkerQueue < 0, "server.worker_queue", "must be ≥ 0"},
		{st.Server.ShutdownTimeoutMs < 0, "server.shutdown_timeout_ms", "must be ≥ 0"},
		{st.Server.ClientRequestTimeoutMs < 1, "server.client_request_timeout_ms", "must be ≥ 1"},
		{st.Server.MaxSessions < 0, "server.max_sessions", "must be ≥ 0 (0: no bound)"},
		{st.Server.MaxSessionsPerPrincipal < 0, "server.max_sessions_per_principal", "must be ≥ 0 (0: no bound)"},
		{st.Transports.TCP.Enabled && st.Transports.TCP.Addr == "", "transports.tcp.addr", "must be host:port"},
		{st.Transports.TCP.ReadTimeoutMs < 0, "transports.tcp.read_timeout_ms", "must be ≥ 0"},
		{st.Transports.TCP.WriteTimeoutMs < 0, "transports.tcp.write_timeout_ms", "must be ≥ 0"},
		{st.MessageSize.MaxRequestSize < 256, "message_size.max_request_size", "must be ≥ 256 bytes"},
		{st.MessageSize.MaxResponseSize < 256, "message_size.max_response_size", "must be ≥ 256 bytes"},
		{st.Hibernation.AfterMs < 0, "hibernation.after_ms", "must be ≥ 0"},
		{!oneOf(st.Logging.Level, "debug", "info", "warning", "warn", "error"), "logging.level", "must be debug, info, warning or error"},
		{!oneOf(st.Logging.Format, "text", "json"), "logging.format", "must be text or json"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("config: %s %s", c.key, c.why)
		}
	}
	if err := st.Transports.HTTP.validate(); err != nil {
		return err
	}
	if err := st.validateSecurity(); err != nil {
		return err
	}
	if err := st.Cluster.validate(); err != nil {
		return err
	}
	return st.Observability.validate()
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return true
		}
	}
	return false
}
