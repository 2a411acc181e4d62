package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ObservabilitySettings is the `observability:` section (seed section 4): the metrics
// listener, the health endpoints and tracing. The daemon's own log is `logging:`.
// It lives in this file, beside the metrics, so that settings.go only names it.
type ObservabilitySettings struct {
	Metrics MetricsSettings `yaml:"metrics" json:"metrics"`
	Health  HealthSettings  `yaml:"health" json:"health"`
	Tracing TracingSettings `yaml:"tracing" json:"tracing"`
}

// MetricsSettings is `observability.metrics`: Prometheus text on its own listener.
type MetricsSettings struct {
	// Enabled serves the metrics and records them (ERLMCP_METRICS_ENABLED). When off, no
	// Observer is installed and the request path records nothing.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Addr is host:port of the metrics listener. Default 127.0.0.1:9090: loopback like
	// the transports; production sets 0.0.0.0:9090 (or a private interface) for Prometheus.
	Addr string `yaml:"addr" json:"addr"`
	// Path is the scrape path. Default /metrics.
	Path string `yaml:"path" json:"path"`
	// Pprof also serves Go's runtime profiles at /debug/pprof/ on this listener
	// (ERLMCP_METRICS_PPROF), for `go tool pprof http://127.0.0.1:9090/debug/pprof/profile`.
	// Off by default: profiles expose internals, and a CPU profile costs while it runs.
	Pprof bool `yaml:"pprof" json:"pprof"`
}

// HealthSettings is `observability.health`.
type HealthSettings struct {
	// Enabled mounts /health, /health/*, /ready, /live and /api/ping on the main HTTP port.
	Enabled bool `yaml:"enabled" json:"enabled"`
}

// TracingSettings is `observability.tracing`: OpenTelemetry spans over OTLP/HTTP.
type TracingSettings struct {
	// Enabled makes one span per request (ERLMCP_TRACING_ENABLED or ERLMCP_OTEL_ENABLED).
	// When off the tracing middleware is not installed at all.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Endpoint is the OTLP/HTTP collector base URL (OTEL_EXPORTER_OTLP_ENDPOINT), e.g.
	// http://otel-collector:4318; /v1/traces is appended. Empty: the exporter's own
	// OTEL_EXPORTER_OTLP_* variables, else http://localhost:4318.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// SampleRatio is the fraction of new traces kept, 0 < r ≤ 1 (parent-based: a sampled
	// traceparent from the client is always followed). Default 1.
	SampleRatio float64 `yaml:"sample_ratio" json:"sample_ratio"`
}

// defaultObservability returns the section's embedded defaults.
func defaultObservability() ObservabilitySettings {
	return ObservabilitySettings{
		Metrics: MetricsSettings{Enabled: true, Addr: "127.0.0.1:9090", Path: "/metrics"},
		Health:  HealthSettings{Enabled: true},
		Tracing: TracingSettings{SampleRatio: 1},
	}
}

// applyEnv applies ERLMCP_METRICS_ENABLED, ERLMCP_METRICS_PPROF, ERLMCP_TRACING_ENABLED, ERLMCP_OTEL_ENABLED
// (either one turns tracing on; "false" in one of them and nothing in the other turns it
// off) and OTEL_EXPORTER_OTLP_ENDPOINT.
func (o *ObservabilitySettings) applyEnv(getenv func(string) string) error {
	envBool := func(name string, dst *bool) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("config: %s=%q: want true or false", name, v)
		}
		*dst = b
		return nil
	}
	if err := envBool("ERLMCP_METRICS_ENABLED", &o.Metrics.Enabled); err != nil {
		return err
	}
	if err := envBool("ERLMCP_METRICS_PPROF", &o.Metrics.Pprof); err != nil {
		return err
	}
	var tracing, otel bool
	tracing, otel = o.Tracing.Enabled, o.Tracing.Enabled
	if err := envBool("ERLMCP_TRACING_ENABLED", &tracing); err != nil {
		return err
	}
	if err := envBool("ERLMCP_OTEL_ENABLED", &otel); err != nil {
		return err
	}
	switch {
	case getenv("ERLMCP_TRACING_ENABLED") != "" && getenv("ERLMCP_OTEL_ENABLED") != "":
		o.Tracing.Enabled = tracing || otel
	case getenv("ERLMCP_TRACING_ENABLED") != "":
		o.Tracing.Enabled = tracing
	case getenv("ERLMCP_OTEL_ENABLED") != "":
		o.Tracing.Enabled = otel
	}
	if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		o.Tracing.Endpoint = v
	}
	return nil
}

// validate names the first bad key of the section.
func (o *ObservabilitySettings) validate() error {
	m := o.Metrics
	if m.Enabled {
		if _, _, err := net.SplitHostPort(m.Addr); err != nil {
			return fmt.Errorf("config: observability.metrics.addr %q must be host:port (e.g. 127.0.0.1:9090)", m.Addr)
		}
		if !strings.HasPrefix(m.Path, "/") {
			return fmt.Errorf("config: observability.metrics.path %q must start with /", m.Path)
		}
	}
	t := o.Tracing
	if !(t.SampleRatio > 0 && t.SampleRatio <= 1) {
		return fmt.Errorf("config: observability.tracing.sample_ratio %v must be > 0 and ≤ 1", t.SampleRatio)
	}
	if t.Enabled && t.Endpoint != "" {
		if _, err := tracesURL(t.Endpoint); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}
