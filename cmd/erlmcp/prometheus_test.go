package main

// The observability contract checked by the real tools (issue 18): a real Prometheus
// (Debian's prometheus 2.42) scrapes a real erlmcp node under a little load from
// `erlmcp bench`, with the shipped scrape config and alert rules, and every expression of the
// shipped Grafana dashboard is evaluated through Prometheus' HTTP API.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The shipped files under test.
const (
	promConfigFile = "../../deploy/prometheus/prometheus.yml"
	promRulesFile  = "../../deploy/prometheus/erlmcp-rules.yml"
	dashboardFile  = "../../deploy/grafana/erlmcp.json"
)

// grafanaRateInterval is what Grafana puts for $__rate_interval with a Prometheus data source
// left at its default 15s scrape interval (max($__interval + scrape, 4 × scrape)).
const grafanaRateInterval = "1m"

// TestPrometheusDashboardAndRules starts a cluster-mode node with TLS (so the cluster and
// certificate series exist), a real Prometheus scraping it every second with the shipped
// prometheus.yml and erlmcp-rules.yml, and runs `erlmcp bench` over TCP and HTTP for a few
// seconds. Then, through Prometheus' HTTP API:
//   - every rule of erlmcp-rules.yml is loaded and evaluates without error against the real
//     series, and ErlmcpTLSCertificateExpiring is pending for the test's one-day certificate;
//   - every template variable of the dashboard finds values, and every panel expression,
//     with the variables substituted, evaluates without error to at least one series with a
//     number, keeps the labels its legend and its `by (...)` name, and queries counters and
//     histograms (as Prometheus' metadata types them) only inside rate/irate/increase.
func TestPrometheusDashboardAndRules(t *testing.T) {
	if program("prometheus") == "" {
		t.Fatal("prometheus is required by the observability test (apt-get install prometheus, Debian's 2.42; " +
			".ci/run installs it without starting its service)")
	}
	dir := t.TempDir()
	certFile, keyFile := writeSelfSignedCert(t, dir, 24*time.Hour)
	redis := startRedis(t)
	node := startNode(t, append(clusterArgs(redis, "node1", testPrefix(t)),
		"-set", "transports.tls.enabled=true", "-set", "transports.tls.addr=127.0.0.1:0",
		"-set", "transports.tls.tls_certfile="+certFile, "-set", "transports.tls.tls_keyfile="+keyFile)...)
	metricsAddr := strings.TrimSuffix(strings.TrimPrefix(node.metrics, "http://"), "/metrics")

	prom := startPrometheus(t, dir, metricsAddr)
	prom.waitFor(t, 20*time.Second, "three scrapes of the node", `count_over_time(up{job="erlmcp"}[1m]) >= 3`)

	// Before any request (issue 13.6): the request series of every transport the node
	// serves exist, so rate() gives zeros rather than nothing.
	var fresh struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := prom.query(`sum by (transport) (rate(erlmcp_requests_total{job="erlmcp"}[1m]))`, &fresh); err != nil {
		t.Fatal(err)
	}
	transports := map[string]any{}
	for _, s := range fresh.Result {
		transports[s.Metric["transport"]] = s.Value[1]
	}
	if want := map[string]any{"tcp": "0", "http": "0", "tls": "0"}; !maps.Equal(transports, want) {
		t.Errorf("fresh node: request rate by transport %v, want %v", transports, want)
	}

	// A little load: tools/call ping-pong over TCP, session-era and stateless HTTP, and a few
	// requests that fail (unknown method), so that every panel has something to show.
	addr := node.hostport()
	var wg sync.WaitGroup
	for name, args := range map[string][]string{
		"tcp":       {"--transport", "tcp", "--addr", addr, "--conns", "2"},
		"http":      {"--transport", "http", "--url", "http://" + addr + "/mcp", "--conns", "2"},
		"stateless": {"--transport", "http", "--stateless", "--url", "http://" + addr + "/mcp", "--conns", "2"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command(binary, append([]string{"bench", "--mode", "pingpong", "--duration", "3s", "--json", "--quiet"}, args...)...).Output()
			var r benchResult
			if err != nil || json.Unmarshal(out, &r) != nil || r.Requests == 0 {
				t.Errorf("bench %s: %v: %s", name, err, out)
			}
		}()
	}
	sendLines(t, addr, 5, `{"jsonrpc":"2.0","id":1,"method":"no/such/method"}`)
	wg.Wait()
	prom.waitFor(t, 20*time.Second, "the load in Prometheus",
		`sum(increase(erlmcp_requests_total{transport="tcp"}[1m])) > 100 and sum(increase(erlmcp_requests_total{transport="http"}[1m])) > 100`)

	checkRules(t, prom)
	checkDashboard(t, prom)
}

// checkRules wants every rule of the shipped file loaded, evaluated and healthy, and the
// certificate alert pending (the test's certificate expires in a day).
func checkRules(t *testing.T, prom *promProc) {
	t.Helper()
	raw, err := os.ReadFile(promRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, g := range file.Groups {
		want += len(g.Rules)
	}
	type rule struct {
		Name, Health, LastError, State string
		LastEvaluation                 time.Time
	}
	var rules []rule
	deadline := time.Now().Add(10 * time.Second)
	for {
		var res struct {
			Groups []struct{ Rules []rule }
		}
		prom.api(t, "/api/v1/rules", nil, &res)
		rules = rules[:0]
		evaluated := 0
		for _, g := range res.Groups {
			for _, r := range g.Rules {
				rules = append(rules, r)
				if !r.LastEvaluation.IsZero() {
					evaluated++
				}
			}
		}
		if len(rules) == want && evaluated == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has %d rules (%d evaluated) from %s, want %d: %+v", len(rules), evaluated, promRulesFile, want, rules)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, r := range rules {
		if r.Health != "ok" || r.LastError != "" {
			t.Errorf("rule %s: health %q, error %q", r.Name, r.Health, r.LastError)
		}
	}

	var alerts struct {
		Alerts []struct {
			Labels map[string]string
			State  string
		}
	}
	prom.api(t, "/api/v1/alerts", nil, &alerts)
	tlsAlerts := map[string]string{}
	for _, a := range alerts.Alerts {
		switch name := a.Labels["alertname"]; name {
		case "ErlmcpTLSCertificateExpiring":
			tlsAlerts[a.Labels["severity"]] = a.State
		case "ErlmcpNodeDown", "ErlmcpClusterRedisDown", "ErlmcpClusterNodeMissing", "ErlmcpMemoryGuardNotOK":
			t.Errorf("%s is %s for a healthy node: %v", name, a.State, a.Labels)
		}
	}
	if tlsAlerts["warning"] != "pending" || tlsAlerts["critical"] != "pending" {
		t.Errorf("ErlmcpTLSCertificateExpiring for a certificate expiring in a day: %v, want warning and critical pending", tlsAlerts)
	}
}

// dashboard is what the test reads of deploy/grafana/erlmcp.json.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"` // a string, or {"query": "..."}
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	ID      int         `json:"id"`
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"` // rows
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

var (
	labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	legendLabelRe = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	byClauseRe    = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	leftoverVarRe = regexp.MustCompile(`\$\{?[a-zA-Z_]\w*`)
)

// checkDashboard evaluates every template variable and panel expression of the dashboard.
func checkDashboard(t *testing.T, prom *promProc) {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}

	// Variables, in order (instance's query uses $job): each must find values; a panel gets
	// them as Grafana formats a multi-value regex variable, (v1|v2) with regex escaping.
	vars := map[string]string{"__rate_interval": grafanaRateInterval, "__interval": "15s", "__range": "1h"}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		m := labelValuesRe.FindStringSubmatch(substitute(q, vars))
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		var values []string
		prom.api(t, "/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {m[1]}}, &values)
		if len(values) == 0 {
			t.Errorf("variable %s: %s finds no values", v.Name, q)
			continue
		}
		quoted := make([]string, len(values))
		for i, s := range values {
			quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`) // inside a PromQL string
		}
		vars[v.Name] = "(" + strings.Join(quoted, "|") + ")"
	}

	// Metric types as Prometheus learnt them from the scrape's # TYPE lines.
	var meta map[string][]struct{ Type string }
	prom.api(t, "/api/v1/metadata", nil, &meta)
	cumulative := map[string]bool{} // series names that only make sense under rate()
	for name, ms := range meta {
		if len(ms) == 0 {
			continue
		}
		switch ms[0].Type {
		case "counter":
			cumulative[name] = true
		case "histogram", "summary":
			cumulative[name+"_bucket"], cumulative[name+"_sum"], cumulative[name+"_count"] = true, true, true
		}
	}

	exprs := 0
	var walk func([]dashPanel)
	walk = func(panels []dashPanel) {
		for _, p := range panels {
			walk(p.Panels)
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					continue
				}
				exprs++
				where := fmt.Sprintf("panel %d %q %s", p.ID, p.Title, tg.RefID)
				q := substitute(tg.Expr, vars)
				if left := leftoverVarRe.FindString(q); left != "" {
					t.Errorf("%s: unknown variable %s in %s", where, left, tg.Expr)
					continue
				}
				for _, name := range outsideRate(q, cumulative) {
					t.Errorf("%s: %s is a counter or histogram series queried outside rate/irate/increase: %s", where, name, tg.Expr)
				}
				checkExpr(t, prom, where, q, tg.LegendFormat)
			}
		}
	}
	walk(d.Panels)
	if exprs == 0 {
		t.Fatalf("%s has no panel expressions", dashboardFile)
	}
	t.Logf("%d dashboard expressions evaluated", exprs)
}

// checkExpr runs one instant query: no error, no warning, at least one series with a number,
// and on every series the labels named by the legend and by every by (...) clause.
func checkExpr(t *testing.T, prom *promProc, where, q, legend string) {
	t.Helper()
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := prom.query(q, &res); err != nil {
		t.Errorf("%s: %v\n\t%s", where, err, q)
		return
	}
	if res.ResultType != "vector" || len(res.Result) == 0 {
		t.Errorf("%s: no series (%s)\n\t%s", where, res.ResultType, q)
		return
	}
	finite := false
	for _, s := range res.Result {
		str, _ := s.Value[1].(string)
		if v, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			finite = true
		}
	}
	if !finite {
		t.Errorf("%s: every series is NaN or Inf: %v\n\t%s", where, res.Result, q)
	}
	var want []string
	for _, m := range legendLabelRe.FindAllStringSubmatch(legend, -1) {
		want = append(want, m[1])
	}
	for _, m := range byClauseRe.FindAllStringSubmatch(q, -1) {
		if strings.Contains(m[0], "without") {
			continue
		}
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && l != "le" { // le is consumed by histogram_quantile
				want = append(want, l)
			}
		}
	}
	for _, l := range want {
		for _, s := range res.Result {
			if s.Metric[l] == "" {
				t.Errorf("%s: a series lacks label %q (named by the legend or a by clause): %v\n\t%s", where, l, s.Metric, q)
				break
			}
		}
	}
}

// substitute replaces $name and ${name} by vars[name] (longest names first, so $instance is
// not read as $in…).
func substitute(q string, vars map[string]string) string {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, k := range names {
		q = strings.ReplaceAll(q, "${"+k+"}", vars[k])
		q = strings.ReplaceAll(q, "$"+k, vars[k])
	}
	return q
}

// outsideRate returns the series names of cumulative that q selects outside any
// rate/irate/increase call. It scans PromQL tokens: strings, label matchers {…}, ranges […]
// and grouping label lists (by/without/on/ignoring/group_left/group_right (…)) are skipped;
// an identifier followed by "(" is a call.
func outsideRate(q string, cumulative map[string]bool) []string {
	var bad []string
	var calls []string // open calls and parentheses ("" for a plain group)
	isIdent := func(c byte) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	skipString := func(i int) int { // i at the opening quote; returns the index after the closing one
		quote := q[i]
		for i++; i < len(q) && q[i] != quote; i++ {
			if q[i] == '\\' {
				i++
			}
		}
		return i + 1
	}
	skipTo := func(i int, open, close byte) int { // i at open; returns the index after close
		depth := 0
		for i < len(q) {
			switch q[i] {
			case '"', '\'':
				i = skipString(i)
				continue
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	nextNonSpace := func(i int) int {
		for i < len(q) && (q[i] == ' ' || q[i] == '\n' || q[i] == '\t') {
			i++
		}
		return i
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '"' || c == '\'':
			i = skipString(i)
		case c == '{':
			i = skipTo(i, '{', '}')
		case c == '[':
			i = skipTo(i, '[', ']')
		case c == '(':
			calls = append(calls, "")
			i++
		case c == ')':
			if len(calls) > 0 {
				calls = calls[:len(calls)-1]
			}
			i++
		case isIdent(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(q) && isIdent(q[j]) {
				j++
			}
			word := q[i:j]
			k := nextNonSpace(j)
			switch {
			case k < len(q) && q[k] == '(' && slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, word):
				i = skipTo(k, '(', ')') // a label list
			case k < len(q) && q[k] == '(':
				calls = append(calls, word)
				i = k + 1
			default:
				if cumulative[word] && !slices.ContainsFunc(calls, func(f string) bool {
					return f == "rate" || f == "irate" || f == "increase"
				}) {
					bad = append(bad, word)
				}
				i = j
			}
		default:
			i++
		}
	}
	return bad
}

// TestOutsideRate pins the scanner the dashboard check relies on.
func TestOutsideRate(t *testing.T) {
	cum := map[string]bool{"x_total": true, "h_bucket": true}
	for q, want := range map[string][]string{
		`sum(rate(x_total{a=~"$job",b="(x_total)"}[1m]))`:                                  nil,
		`histogram_quantile(0.99, sum by (le, method) (rate(h_bucket{job=~"(a|b)"}[5m])))`: nil,
		`sum(x_total)`: {"x_total"},
		`histogram_quantile(0.99, sum by (le) (h_bucket))`:           {"h_bucket"},
		`-sum by (x_total) (increase(x_total[1m])) / on (x_total) g`: nil,
		`sum(rate(x_total[1m])) / sum(x_total)`:                      {"x_total"},
	} {
		if got := outsideRate(q, cum); !slices.Equal(got, want) {
			t.Errorf("outsideRate(%s) = %v, want %v", q, got, want)
		}
	}
}

// promProc is a Prometheus server of one test, on a temp dir and a free loopback port.
type promProc struct {
	proc *bgProc
	base string // http://127.0.0.1:port
	out  *syncBuffer
}

// startPrometheus runs prometheus with the shipped prometheus.yml, changed only where a
// test must: a 1 s scrape and evaluation interval, the node's metrics address as the
// target, and the shipped rules file by absolute path.
func startPrometheus(t *testing.T, dir, target string) *promProc {
	t.Helper()
	raw, err := os.ReadFile(promConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", promConfigFile, err)
	}
	rules, err := filepath.Abs(promRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		t.Fatalf("%s has no global section", promConfigFile)
	}
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	if got, _ := cfg["rule_files"].([]any); len(got) != 1 || got[0] != filepath.Base(promRulesFile) {
		t.Fatalf("%s: rule_files %v, want [%s]", promConfigFile, got, filepath.Base(promRulesFile))
	}
	cfg["rule_files"] = []any{rules}
	scrapes, _ := cfg["scrape_configs"].([]any)
	if len(scrapes) != 1 {
		t.Fatalf("%s: %d scrape configs, want 1", promConfigFile, len(scrapes))
	}
	job := scrapes[0].(map[string]any)
	job["scrape_timeout"] = "1s"
	job["static_configs"] = []any{map[string]any{"targets": []any{target}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, out, 0o644); err != nil {
		t.Fatal(err)
	}

	p := &promProc{}
	for attempt := 0; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
		p.base, p.out = "http://"+addr, &syncBuffer{}
		data := filepath.Join(dir, fmt.Sprintf("data%d", attempt))
		cmd := exec.Command(program("prometheus"), "--config.file="+cfgFile, "--storage.tsdb.path="+data,
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = p.out, p.out
		if p.proc, err = startBG(cmd); err != nil {
			t.Fatalf("prometheus: %v", err)
		}
		if p.ready(15 * time.Second) {
			break
		}
		p.proc.stop(2 * time.Second)
		if attempt == 4 || !strings.Contains(p.out.String(), "address already in use") {
			t.Fatalf("prometheus did not become ready:\n%s", p.out.String())
		}
	}
	t.Cleanup(func() {
		p.proc.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("prometheus config:\n%s\nprometheus log:\n%s", out, p.out.String())
		}
	})
	return p
}

// ready reports whether /-/ready answers 200 within timeout (false if prometheus exited).
func (p *promProc) ready(timeout time.Duration) bool {
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline) && !p.proc.exited(); time.Sleep(100 * time.Millisecond) {
		if resp, err := c.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
	}
	return false
}

// api GETs path with params and decodes the "data" of a successful answer into v.
func (p *promProc) api(t *testing.T, path string, params url.Values, v any) {
	t.Helper()
	if err := p.get(path, params, v, nil); err != nil {
		t.Fatalf("GET %s %v: %v", path, params, err)
	}
}

func (p *promProc) get(path string, params url.Values, v any, warnings *[]string) error {
	c := http.Client{Timeout: 10 * time.Second}
	u := p.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	if warnings != nil {
		*warnings = body.Warnings
	}
	return json.Unmarshal(body.Data, v)
}

// query runs an instant query now; a warning is an error too.
func (p *promProc) query(q string, v any) error {
	var warnings []string
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, v, &warnings); err != nil {
		return err
	}
	if len(warnings) > 0 {
		return fmt.Errorf("warnings: %v", warnings)
	}
	return nil
}

// waitFor polls the instant query q until it returns a series, or fails the test naming what.
func (p *promProc) waitFor(t *testing.T, timeout time.Duration, what, q string) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var res struct {
			Result []json.RawMessage `json:"result"`
		}
		if last = p.query(q, &res); last == nil && len(res.Result) > 0 {
			return
		}
	}
	t.Fatalf("waiting for %s: %s returned nothing within %v (last error %v)\n%s", what, q, timeout, last, p.out.String())
}

// sendLines sends line n times on one TCP connection and reads the n replies.
func sendLines(t *testing.T, addr string, n int, line string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for range n {
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64<<10)
	got := 0
	for lines := 0; lines < n; {
		m, err := c.Read(buf[got:])
		if err != nil {
			t.Fatalf("reading %d replies: %v (%q)", n, err, buf[:got])
		}
		lines += strings.Count(string(buf[got:got+m]), "\n")
		got += m
	}
}

// writeSelfSignedCert writes a self-signed certificate for 127.0.0.1 valid for validFor,
// and its key (mode 0600, as the TLS listener requires), into dir.
func writeSelfSignedCert(t *testing.T, dir string, validFor time.Duration) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "erlmcp prometheus test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
