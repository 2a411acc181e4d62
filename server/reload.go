package server

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ReloadReport is the answer to `erlmcp reload`: what changed in the config file since the
// daemon started (or last reloaded), what was applied live and what needs a restart.
type ReloadReport struct {
	Config string `json:"config"`
	// Applied are changed keys now in effect.
	Applied []KeyChange `json:"applied"`
	// Restart are changed keys that take effect only in a new process: `erlmcp upgrade`
	// starts one on the same sockets without dropping requests.
	Restart []KeyChange `json:"restart_required"`
	// TLSReloaded is true when the TLS certificate, key and CA bundle were re-read.
	TLSReloaded bool `json:"tls_reloaded"`
	// Warnings are things applied with a caveat (e.g. an unknown tool name).
	Warnings []string `json:"warnings,omitempty"`
}

// KeyChange is one changed key. Values of secret-looking keys are not shown.
type KeyChange struct {
	Key string `json:"key"`
	Old string `json:"old"`
	New string `json:"new"`
}

// liveKeys are the keys Reload applies without a restart: the log level, disabled tools,
// the rate limiter's quotas and the memory guard's limit and water marks (nginx-style: no
// restart, no connection dropped). Turning the limiter or the guard on or off, key_by and
// sampling intervals need a restart.
var liveKeys = []string{"logging.level", "server.disabled_tools",
	"rate_limiter.max_requests_per_minute", "rate_limiter.max_burst", "rate_limiter.burst_interval_ms",
	"rate_limiter.global_max_requests_per_minute",
	"memory_guard.memory_limit_bytes", "memory_guard.high_water", "memory_guard.low_water"}

// Reload re-reads the config file the daemon was started with (SetConfigSource; the
// environment and -set overrides apply again), applies what can change live — the log
// level, server.disabled_tools, the rate limiter's quotas, the memory guard's limit and
// water marks (liveKeys) and the TLS certificates — and reports the other changed keys as
// needing a restart. A file that does not load or validate changes nothing.
func (d *Daemon) Reload() (ReloadReport, error) {
	d.ops.mu.Lock()
	path, sets := d.ops.cfgPath, d.ops.sets
	if d.ops.live == nil {
		cur := d.st
		d.ops.live = &cur
	}
	cur := *d.ops.live
	d.ops.mu.Unlock()
	rep := ReloadReport{Config: path}
	if path == "" {
		rep.Config = "(embedded defaults)"
	}
	next, err := LoadSettings(path)
	if err != nil {
		return rep, fmt.Errorf("reload: %w (nothing changed)", err)
	}
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		if err := next.Set(k, v); err != nil {
			return rep, fmt.Errorf("reload: %w (nothing changed)", err)
		}
	}
	if err := next.Validate(); err != nil {
		return rep, fmt.Errorf("reload: %w (nothing changed)", err)
	}
	changes, err := diffSettings(cur, next)
	if err != nil {
		return rep, fmt.Errorf("reload: %w", err)
	}
	limitsChanged := false
	for _, c := range changes {
		if !isLiveKey(c.Key) || !liveInThisProcess(cur, c.Key) {
			rep.Restart = append(rep.Restart, c)
			continue
		}
		if strings.HasPrefix(c.Key, "rate_limiter.") || strings.HasPrefix(c.Key, "memory_guard.") {
			limitsChanged = true
		}
		switch {
		case c.Key == "logging.level":
			d.SetLogLevel(next.Logging.Level)
			cur.Logging.Level = next.Logging.Level
		case strings.HasPrefix(c.Key, "server.disabled_tools"):
			// applied once below, for the whole list
		}
		rep.Applied = append(rep.Applied, c)
	}
	if limitsChanged {
		if err := d.reloadLimits(cur, next); err != nil {
			return rep, fmt.Errorf("reload: %w (limits unchanged)", err)
		}
		cur.RateLimiter = keepLive(cur.RateLimiter, next.RateLimiter)
		cur.MemoryGuard.MemoryLimitBytes = next.MemoryGuard.MemoryLimitBytes
		cur.MemoryGuard.HighWater, cur.MemoryGuard.LowWater = next.MemoryGuard.HighWater, next.MemoryGuard.LowWater
		d.log.Info("limits reloaded", "max_requests_per_minute", next.RateLimiter.MaxRequestsPerMinute,
			"max_burst", next.RateLimiter.MaxBurst, "memory_limit_bytes", next.MemoryGuard.MemoryLimitBytes)
	}
	if !equalStrings(cur.Server.DisabledTools, next.Server.DisabledTools) {
		rep.Warnings = append(rep.Warnings, d.applyDisabledTools(next.Server.DisabledTools)...)
		cur.Server.DisabledTools = append([]string(nil), next.Server.DisabledTools...)
	}
	if d.sec != nil && d.sec.tls != nil {
		if err := d.ReloadTLS(); err != nil {
			rep.Warnings = append(rep.Warnings, "TLS certificates not reloaded (the old ones stay in use): "+err.Error())
		} else {
			rep.TLSReloaded = true
		}
	}
	d.ops.mu.Lock()
	d.ops.live = &cur
	d.ops.mu.Unlock()
	d.log.Info("config reloaded", "config", rep.Config, "applied", len(rep.Applied), "restart_required", len(rep.Restart))
	return rep, nil
}

// liveInThisProcess reports whether a live key can change in the running process: the
// limiter's and the guard's keys only while that limiter or guard runs (one started
// off is turned on by a restart).
func liveInThisProcess(cur Settings, key string) bool {
	switch {
	case strings.HasPrefix(key, "rate_limiter."):
		return cur.RateLimiter.Enabled
	case strings.HasPrefix(key, "memory_guard."):
		return cur.MemoryGuard.Enabled
	}
	return true
}

// keepLive returns cur with the live rate-limiter keys of next.
func keepLive(cur, next RateLimiterSettings) RateLimiterSettings {
	cur.MaxRequestsPerMinute, cur.MaxBurst, cur.BurstIntervalMs = next.MaxRequestsPerMinute, next.MaxBurst, next.BurstIntervalMs
	cur.GlobalMaxRequestsPerMinute = next.GlobalMaxRequestsPerMinute
	return cur
}

func isLiveKey(key string) bool {
	for _, k := range liveKeys {
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// diffSettings returns the keys whose values differ between a and b, sorted.
func diffSettings(a, b Settings) ([]KeyChange, error) {
	fa, err := FlattenSettings(a)
	if err != nil {
		return nil, err
	}
	fb, err := FlattenSettings(b)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []KeyChange
	for k := range keys {
		if fa[k] == fb[k] {
			continue
		}
		c := KeyChange{Key: k, Old: fa[k], New: fb[k]}
		if secretKey(k) {
			c.Old, c.New = "(hidden)", "(hidden)"
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"secret", "password", "token", "signing_key", "api_keys", "hmac", "state_key", "redis_url"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// FlattenSettings returns every key of st as a dotted path ("transports.tcp.addr") with its
// value in YAML flow form; lists are one key each ("server.disabled_tools").
func FlattenSettings(st Settings) (map[string]string, error) {
	raw, err := yaml.Marshal(st)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if len(n.Content) == 1 {
		flattenNode("", n.Content[0], out)
	}
	return out, nil
}

func flattenNode(prefix string, n *yaml.Node, out map[string]string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if prefix != "" {
				k = prefix + "." + k
			}
			if v := n.Content[i+1]; v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				flattenNode(k, v, out)
			} else {
				out[k] = flowValue(v)
			}
		}
		return
	}
	out[prefix] = flowValue(n)
}

func flowValue(n *yaml.Node) string {
	c := *n
	c.Style = yaml.FlowStyle
	b, err := yaml.Marshal(&c)
	if err != nil {
		return n.Value
	}
	return strings.TrimSpace(string(b))
}

// applyDisabledTools hides the named tools (tools/list, tools/call) and restores tools no
// longer named; it returns warnings for names that match no tool. Clients are told with
// notifications/tools/list_changed.
func (d *Daemon) applyDisabledTools(names []string) []string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	d.ops.mu.Lock()
	defer d.ops.mu.Unlock()
	if d.ops.disabled == nil {
		d.ops.disabled = map[string]*toolEntry{}
	}
	changed := false
	for name, e := range d.ops.disabled {
		if !want[name] {
			d.srv.tools.put(name, e)
			delete(d.ops.disabled, name)
			changed = true
		}
	}
	var warn []string
	for name := range want {
		if _, off := d.ops.disabled[name]; off {
			continue
		}
		e, ok := d.srv.tools.get(name)
		if !ok {
			warn = append(warn, fmt.Sprintf("server.disabled_tools: no tool named %q", name))
			continue
		}
		d.srv.tools.remove(name)
		d.ops.disabled[name] = e
		changed = true
	}
	if changed {
		d.srv.listChanged(NotificationToolListChanged)
		d.log.Info("tools disabled", "tools", strings.Join(names, ","))
	}
	sort.Strings(warn)
	return warn
}
