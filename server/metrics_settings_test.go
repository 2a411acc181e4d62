package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestObservabilitySettingsEnv(t *testing.T) {
	for _, tc := range []struct {
		env                       map[string]string
		metrics, tracing, pprof   bool
		endpoint, wantErrContains string
	}{
		{env: nil, metrics: true, tracing: false},
		{env: map[string]string{"ERLMCP_METRICS_ENABLED": "false"}, metrics: false},
		{env: map[string]string{"ERLMCP_METRICS_PPROF": "true"}, metrics: true, pprof: true},
		{env: map[string]string{"ERLMCP_METRICS_PPROF": "on"}, wantErrContains: "ERLMCP_METRICS_PPROF"},
		{env: map[string]string{"ERLMCP_OTEL_ENABLED": "true"}, metrics: true, tracing: true},
		{env: map[string]string{"ERLMCP_TRACING_ENABLED": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, metrics: true, tracing: true, endpoint: "http://c:4318"},
		{env: map[string]string{"ERLMCP_TRACING_ENABLED": "false", "ERLMCP_OTEL_ENABLED": "true"}, metrics: true, tracing: true},
		{env: map[string]string{"ERLMCP_TRACING_ENABLED": "false"}, metrics: true, tracing: false},
		{env: map[string]string{"ERLMCP_METRICS_ENABLED": "maybe"}, wantErrContains: "ERLMCP_METRICS_ENABLED"},
		{env: map[string]string{"ERLMCP_OTEL_ENABLED": "yes!"}, wantErrContains: "ERLMCP_OTEL_ENABLED"},
	} {
		st := DefaultSettings()
		err := st.applyEnv(func(k string) string { return tc.env[k] })
		if tc.wantErrContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrContains) {
				t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.wantErrContains)
			}
			continue
		}
		o := st.Observability
		if err != nil || o.Metrics.Enabled != tc.metrics || o.Metrics.Pprof != tc.pprof || o.Tracing.Enabled != tc.tracing || o.Tracing.Endpoint != tc.endpoint {
			t.Errorf("%v: %+v, %v", tc.env, o, err)
		}
	}
}

func TestObservabilitySettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		yaml, key string
	}{
		{"observability:\n  metrics:\n    addr: nonsense\n", "observability.metrics.addr"},
		{"observability:\n  metrics:\n    path: metrics\n", "observability.metrics.path"},
		{"observability:\n  tracing:\n    sample_ratio: 1.5\n", "observability.tracing.sample_ratio"},
		{"observability:\n  tracing:\n    enabled: true\n    endpoint: \"http://\"\n", "observability.tracing.endpoint"},
		{"observability:\n  metrics:\n    enabeld: true\n", "enabeld"},
	} {
		path := filepath.Join(t.TempDir(), "erlmcp.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		_, err := LoadSettings(path)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
	path := filepath.Join(t.TempDir(), "ok.yaml")
	os.WriteFile(path, []byte("observability:\n  metrics:\n    enabled: false\n    addr: \"\"\n  health:\n    enabled: false\n  tracing:\n    sample_ratio: 0.1\n"), 0o600)
	st, err := LoadSettings(path)
	if err != nil || st.Observability.Metrics.Enabled || st.Observability.Health.Enabled || st.Observability.Tracing.SampleRatio != 0.1 {
		t.Fatalf("%+v %v", st.Observability, err)
	}
	if d, err := NewDaemon(st, BuildInfo{}, nil); err != nil || d.HealthRoutes() != nil {
		t.Fatalf("health disabled but routes given (%v)", err)
	}
}
