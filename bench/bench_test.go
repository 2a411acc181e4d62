package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// --procs re-executes the test binary as a worker.
	if os.Getenv(workerEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	workerCommand = func() (string, []string, error) { return os.Args[0], nil, nil }
	os.Exit(m.Run())
}

// run validates cfg and runs it quietly.
func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	cfg.Quiet = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	res, err := Run(&cfg, io.Discard)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// sane checks the figures of a load run that should have no errors.
func sane(t *testing.T, res *Result) {
	t.Helper()
	if res.Errors != 0 {
		t.Fatalf("errors %d: %v %v", res.Errors, res.ErrorsByKind, res.ErrorSamples)
	}
	if res.Requests == 0 || res.RPS <= 0 {
		t.Fatalf("no throughput: requests %d rps %.0f", res.Requests, res.RPS)
	}
	l := res.Latency
	if l.Count != res.Requests {
		t.Fatalf("histogram holds %d values, requests %d", l.Count, res.Requests)
	}
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Fatalf("percentiles out of order: %+v", l)
	}
	var sum uint64
	for _, v := range res.Series {
		sum += v
	}
	if sum != res.Requests {
		t.Fatalf("series sums to %d, requests %d", sum, res.Requests)
	}
}

func TestModes(t *testing.T) {
	f := &fakeMCP{}
	tcp := startFakeTCP(t, f)
	url := startFakeHTTP(t, f)
	sse := startFakeHTTP(t, &fakeMCP{sse: true})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"tcp/pingpong", Config{Mode: ModePingPong, Addr: tcp}},
		{"tcp/pingpong/stateless", Config{Mode: ModePingPong, Addr: tcp, Stateless: true}},
		{"tcp/pipelined", Config{Mode: ModePipelined, Addr: tcp, Depth: 8}},
		{"tcp/mixed", Config{Mode: ModeMixed, Addr: tcp, Depth: 4}},
		{"http/pingpong/session", Config{Mode: ModePingPong, Transport: "http", URL: url}},
		{"http/pingpong/stateless", Config{Mode: ModePingPong, Transport: "http", URL: url, Stateless: true}},
		{"http/pipelined/stateless", Config{Mode: ModePipelined, Transport: "http", URL: url, Stateless: true, Depth: 4}},
		{"http/mixed/session/sse", Config{Mode: ModeMixed, Transport: "http", URL: sse, Depth: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Conns, cfg.Duration = 4, 500*time.Millisecond
			if cfg.Transport == "" {
				cfg.Transport = "tcp"
			}
			res := run(t, cfg)
			sane(t, res)
			if cfg.Mode == ModeMixed && len(res.ByMethod) != nKinds {
				t.Fatalf("mixed: by method %v", res.ByMethod)
			}
			if !cfg.Stateless && (res.Initialize == nil || res.Initialize.Count != 4) {
				t.Fatalf("session era: initialize %+v, want 4", res.Initialize)
			}
		})
	}
	if f.deletes.Load() == 0 {
		t.Fatal("HTTP sessions were not deleted")
	}
}

func TestRequestsBound(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	for _, depth := range []int{1, 16} {
		res := run(t, Config{Mode: ModePipelined, Addr: addr, Conns: 3, Depth: depth, Requests: 1000, Duration: 10 * time.Second})
		sane(t, res)
		if res.Requests != 1000 {
			t.Fatalf("depth %d: %d requests, want 1000", depth, res.Requests)
		}
	}
}

func TestRPCErrors(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{failMethod: "tools/list"})
	res := run(t, Config{Mode: ModeMixed, Addr: addr, Conns: 2, Requests: 2000, Duration: 10 * time.Second})
	got := res.ErrorsByKind["rpc_-32601"]
	if got == 0 || got != res.Errors || res.Requests+res.Errors != 2000 {
		t.Fatalf("errors %v, requests %d: want only rpc_-32601 and 2000 in all", res.ErrorsByKind, res.Requests)
	}
	if _, ok := res.ByMethod["tools/list"]; ok {
		t.Fatal("failed requests recorded in the latency histogram")
	}
}

func TestConnectErrors(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	// Find a closed port: a listener we close.
	dead := strings.Replace(addr, ":", ":", 1)
	cfgAddr := dead[:strings.LastIndex(dead, ":")] + ":1"
	res := run(t, Config{Mode: ModePingPong, Addr: cfgAddr, Conns: 2, Duration: 300 * time.Millisecond})
	if res.ErrorsByKind["connect"] == 0 || res.Requests != 0 {
		t.Fatalf("want connect errors, got %v, %d requests", res.ErrorsByKind, res.Requests)
	}
}

func TestOpenLoopRate(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	res := run(t, Config{Mode: ModePipelined, Addr: addr, Conns: 4, Depth: 4, Rate: 400, Duration: time.Second})
	sane(t, res)
	if math.Abs(float64(res.Requests)-400) > 120 {
		t.Fatalf("open loop at 400/s for 1s sent %d", res.Requests)
	}
}

func TestIdle(t *testing.T) {
	for _, tr := range []string{"tcp", "http"} {
		t.Run(tr, func(t *testing.T) {
			f := &fakeMCP{}
			cfg := Config{Mode: ModeIdle, Transport: tr, Conns: 20, Duration: 300 * time.Millisecond, PID: os.Getpid()}
			if tr == "tcp" {
				cfg.Addr = startFakeTCP(t, f)
			} else {
				cfg.URL = startFakeHTTP(t, f)
			}
			res := run(t, cfg)
			if res.Errors != 0 {
				t.Fatalf("errors %v %v", res.ErrorsByKind, res.ErrorSamples)
			}
			if res.Server == nil || res.Server.Sessions != 20 || res.Server.Loaded.RSSBytes == 0 {
				t.Fatalf("server report %+v", res.Server)
			}
			if f.inits.Load() != 20 || res.Initialize.Count != 20 {
				t.Fatalf("%d initialize, histogram %d; want 20", f.inits.Load(), res.Initialize.Count)
			}
			if res.ByMethod != nil || res.Latency.Count != 20 {
				t.Fatalf("closing pings: %+v", res.Latency)
			}
		})
	}
}

// TestProcs runs the CLI with --procs 2: workers are this test binary re-executed.
func TestProcs(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	var out, errb bytes.Buffer
	code := Main([]string{"--mode", "pipelined", "--addr", addr, "--conns", "4", "--procs", "2", "--depth", "4",
		"--requests", "4000", "--duration", "10s", "--json", "--quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Procs != 2 || res.Requests != 4000 || res.Errors != 0 || res.Latency.Count != 4000 {
		t.Fatalf("procs %d requests %d errors %d histogram %d", res.Procs, res.Requests, res.Errors, res.Latency.Count)
	}
	if res.ClientCPUSeconds <= 0 {
		t.Fatalf("client CPU of workers not counted: %v", res.ClientCPUSeconds)
	}
}

func TestIdleProcs(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	var out, errb bytes.Buffer
	code := Main([]string{"--mode", "idle", "--addr", addr, "--conns", "6", "--procs", "2", "--duration", "200ms",
		"--pid", "1", "--json", "--quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Server == nil || res.Server.Sessions != 6 || res.Errors != 0 {
		t.Fatalf("server %+v errors %v", res.Server, res.ErrorsByKind)
	}
}

func TestOutputs(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	svg := t.TempDir() + "/lat.svg"
	var md, errb bytes.Buffer
	if code := Main([]string{"--mode", "mixed", "--addr", addr, "--conns", "2", "--duration", "300ms", "--md", "--plot", svg}, &md, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(md.String(), "| mode |") || !strings.Contains(md.String(), "↳ ping") {
		t.Fatalf("markdown:\n%s", md.String())
	}
	if !strings.Contains(errb.String(), "bench: ") {
		t.Fatalf("no progress line on stderr: %q", errb.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("SVG is not XML: %v", err)
		}
	}
	if !bytes.Contains(b, []byte("<polyline")) || !bytes.Contains(b, []byte("<rect x=")) {
		t.Fatal("SVG lacks the histogram or the throughput line")
	}
}

func TestValidate(t *testing.T) {
	f := func(c Config, want string) {
		t.Helper()
		err := c.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("%+v: got %v, want %q", c, err, want)
		}
	}
	f(Config{}, "")
	f(Config{Addr: "10.1.2.3:8080"}, "not a loopback")
	f(Config{Addr: "10.1.2.3:8080", AllowRemote: true}, "")
	f(Config{Transport: "http", URL: "http://192.0.2.1/mcp"}, "not a loopback")
	f(Config{Transport: "http", URL: "https://127.0.0.1/mcp"}, "https")
	f(Config{Mode: "burst"}, "--mode")
	f(Config{Mode: ModeMixed, Mix: "call=1,nap=2"}, "nap")
	f(Config{Depth: 5000, Mode: ModePipelined}, "--depth")
	f(Config{SourceIPs: "127.0.0.1-127.0.0.x"}, "--source-ips")
	c := Config{SourceIPs: "127.0.0.1-127.0.0.8,::1"}
	if err := c.Validate(); err != nil || len(c.sourceIPs) != 9 {
		t.Fatalf("source ips %v %v", c.sourceIPs, err)
	}
}

func TestSourceIPs(t *testing.T) {
	addr := startFakeTCP(t, &fakeMCP{})
	res := run(t, Config{Mode: ModePingPong, Addr: addr, Conns: 4, Duration: 200 * time.Millisecond, SourceIPs: "127.0.0.2-127.0.0.3"})
	sane(t, res)
}

// TestServerCloses: a server that closes after every reply costs reconnects, not errors.
func TestServerCloses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	defer srv.Close()
	res := run(t, Config{Mode: ModePingPong, Transport: "http", URL: srv.URL + "/mcp", Stateless: true, Conns: 2, Requests: 200, Duration: 10 * time.Second})
	sane(t, res)
	if res.Requests != 200 {
		t.Fatalf("%d requests, want 200", res.Requests)
	}
}
