package bench

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Modes.
const (
	ModeIdle      = "idle"
	ModePingPong  = "pingpong"
	ModePipelined = "pipelined"
	ModeMixed     = "mixed"
)

// maxDepth bounds requests in flight per connection: ids carry the slot in
// their low 10 bits.
const maxDepth = 1024

// Config is one bench run. Zero values mean the documented defaults; call
// Validate before use (it fills the derived fields).
type Config struct {
	// Mode is idle, pingpong, pipelined or mixed. Default pingpong.
	Mode string `json:"mode"`
	// Transport is tcp (newline-delimited JSON-RPC) or http (Streamable HTTP). Default tcp.
	Transport string `json:"transport"`
	// Addr is the TCP target host:port. Default 127.0.0.1:8080.
	Addr string `json:"addr,omitempty"`
	// URL is the Streamable HTTP endpoint. Default http://127.0.0.1:8080/mcp.
	URL string `json:"url,omitempty"`
	// Conns is the number of connections (sessions in idle mode). Default 64.
	Conns int `json:"conns"`
	// Duration bounds the run (the hold time in idle mode). Default 10s.
	Duration time.Duration `json:"duration"`
	// Requests, when positive, stops the run after this many requests in total.
	Requests int64 `json:"requests,omitempty"`
	// Depth is the requests in flight per connection (pipelined, mixed). Default 1
	// for pingpong, 16 for pipelined and mixed; at most 1024.
	Depth int `json:"depth"`
	// Method is what pingpong and pipelined send: call, ping or list. Default call.
	Method string `json:"method"`
	// Tool and Args name the tools/call target. Default echo {"text":"hello"}.
	Tool string `json:"tool"`
	Args string `json:"args"`
	// Mix weights tools/call, ping and tools/list in mixed mode. Default "call=8,ping=1,list=1".
	Mix string `json:"mix,omitempty"`
	// Stateless sends 2026-07-28 requests (MCP-Protocol-Version header and
	// _meta in params) without initialize.
	Stateless bool `json:"stateless"`
	// ProtocolVersion is offered in initialize. Default SessionVersion.
	ProtocolVersion string `json:"protocolVersion,omitempty"`
	// SourceIPs lists local addresses bound round-robin ("127.0.0.1-127.0.0.8" or
	// a comma list), each giving its own 64K ephemeral ports. Default: the kernel's choice.
	SourceIPs string `json:"sourceIPs,omitempty"`
	// Procs spreads connections over this many worker processes. Default 1, or
	// as many as the open-file limit requires.
	Procs int `json:"procs"`
	// Warmup is excluded from the figures. Default 0.
	Warmup time.Duration `json:"warmup,omitempty"`
	// Rate, when positive, is the open-loop target in requests/s over all connections.
	Rate float64 `json:"rate,omitempty"`
	// Timeout is the longest wait for a reply or a connect. Default 5s.
	Timeout time.Duration `json:"timeout"`
	// DialConcurrency bounds connects plus initializes in progress. Default 256.
	DialConcurrency int `json:"dialConcurrency"`
	// PID, when positive, is the server process whose /proc status is sampled.
	PID int `json:"pid,omitempty"`
	// MetricsURL is the server's Prometheus endpoint sampled in idle mode when
	// PID is not set (process_resident_memory_bytes, go_goroutines).
	MetricsURL string `json:"metricsURL,omitempty"`
	// HoldConns keeps idle HTTP sessions' connections open; by default idle
	// mode closes them after initialize and holds the sessions alone.
	HoldConns bool `json:"holdConns,omitempty"`
	// RetryUnanswered counts the requests a server left unanswered when it closed a
	// connection as retried, not failed, and goes on over a new connection. Correct
	// against servers that never close with an executed request unanswered, as erlmcp's
	// drain guarantees (erlmcp upgrade, erlmcp stop): measures "0 failed requests".
	RetryUnanswered bool `json:"retryUnanswered"`
	// AllowRemote allows non-loopback targets.
	AllowRemote bool `json:"-"`
	// Quiet suppresses the progress line.
	Quiet bool `json:"-"`

	// Derived by Validate.
	mix       [nKinds]int
	mixTotal  int
	sourceIPs []net.IP
	host      string // HTTP Host header
	path      string // HTTP request path
	dialAddr  string
	// connOffset is the global index of this process's first connection (workers).
	connOffset int
	// worker makes Run report to stdout as a worker process.
	worker bool
}

// Validate checks c, fills defaults and derived fields, and names the bad field.
func (c *Config) Validate() error {
	if c.Mode == "" {
		c.Mode = ModePingPong
	}
	switch c.Mode {
	case ModeIdle, ModePingPong, ModePipelined, ModeMixed:
	default:
		return fmt.Errorf("bench: --mode %q: want idle, pingpong, pipelined or mixed", c.Mode)
	}
	if c.Transport == "" {
		c.Transport = "tcp"
	}
	if c.Conns <= 0 {
		c.Conns = 64
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Depth <= 0 {
		c.Depth = 1
		if c.Mode == ModePipelined || c.Mode == ModeMixed {
			c.Depth = 16
		}
	}
	if c.Mode == ModePingPong {
		c.Depth = 1
	}
	if c.Depth > maxDepth {
		return fmt.Errorf("bench: --depth %d: at most %d", c.Depth, maxDepth)
	}
	if c.Tool == "" {
		c.Tool = "echo"
	}
	if c.Args == "" {
		c.Args = `{"text":"hello"}`
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 256
	}
	if c.ProtocolVersion == "" {
		c.ProtocolVersion = SessionVersion
	}
	if c.Procs <= 0 {
		c.Procs = 1
	}
	if c.Procs > c.Conns {
		c.Procs = c.Conns
	}
	if c.Method == "" {
		c.Method = "call"
	}
	if c.Mode == ModeMixed {
		if c.Mix == "" {
			c.Mix = "call=8,ping=1,list=1"
		}
		if err := c.parseMix(c.Mix); err != nil {
			return err
		}
	} else {
		k, ok := map[string]int{"call": kindCall, "tools/call": kindCall, "ping": kindPing, "list": kindList, "tools/list": kindList}[c.Method]
		if !ok {
			return fmt.Errorf("bench: --method %q: want call, ping or list", c.Method)
		}
		c.mix = [nKinds]int{}
		c.mix[k] = 1
		c.mixTotal = 1
	}
	var host string
	switch c.Transport {
	case "tcp":
		if c.Addr == "" {
			c.Addr = "127.0.0.1:8080"
		}
		h, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return fmt.Errorf("bench: --addr %q: %v", c.Addr, err)
		}
		host, c.dialAddr = h, c.Addr
	case "http":
		if c.URL == "" {
			c.URL = "http://127.0.0.1:8080/mcp"
		}
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("bench: --url %q: want http://host:port/path (https is not supported)", c.URL)
		}
		c.host, c.path = u.Host, u.RequestURI()
		host = u.Hostname()
		c.dialAddr = u.Host
		if u.Port() == "" {
			c.dialAddr = net.JoinHostPort(host, "80")
		}
	default:
		return fmt.Errorf("bench: --transport %q: want tcp or http", c.Transport)
	}
	if !c.AllowRemote {
		if err := checkLoopback(host); err != nil {
			return err
		}
		if c.MetricsURL != "" {
			u, err := url.Parse(c.MetricsURL)
			if err != nil {
				return fmt.Errorf("bench: --metrics %q: %v", c.MetricsURL, err)
			}
			if err := checkLoopback(u.Hostname()); err != nil {
				return err
			}
		}
	}
	ips, err := parseSourceIPs(c.SourceIPs)
	if err != nil {
		return err
	}
	c.sourceIPs = ips
	if c.Rate < 0 {
		return fmt.Errorf("bench: --rate %v: must not be negative", c.Rate)
	}
	return nil
}

func (c *Config) parseMix(s string) error {
	c.mix, c.mixTotal = [nKinds]int{}, 0
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 {
			return fmt.Errorf("bench: --mix %q: want name=weight,... (call, ping, list)", s)
		}
		switch name {
		case "call", "tools/call":
			c.mix[kindCall] += n
		case "ping":
			c.mix[kindPing] += n
		case "list", "tools/list":
			c.mix[kindList] += n
		default:
			return fmt.Errorf("bench: --mix %q: unknown request %q (call, ping, list)", s, name)
		}
		c.mixTotal += n
	}
	if c.mixTotal == 0 {
		return fmt.Errorf("bench: --mix %q: weights sum to zero", s)
	}
	return nil
}

// errRemote refuses non-loopback targets.
var errRemote = errors.New("bench: target is not a loopback address; pass --allow-remote to load a remote server")

func checkLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%w (%s)", errRemote, host)
	}
	addrs, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("bench: resolving %q: %v", host, err)
	}
	for _, ip := range addrs {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w (%s is %s)", errRemote, host, ip)
		}
	}
	return nil
}

// parseSourceIPs parses "a-b" IPv4 ranges and comma lists.
func parseSourceIPs(s string) ([]net.IP, error) {
	if s == "" {
		return nil, nil
	}
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			if ip := net.ParseIP(part); ip != nil && !isRange {
				out = append(out, ip)
				continue
			}
			return nil, fmt.Errorf("bench: --source-ips %q: bad address %q", s, lo)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(hi).To4()
		if b == nil {
			return nil, fmt.Errorf("bench: --source-ips %q: bad address %q", s, hi)
		}
		x, y := ipv4Int(a), ipv4Int(b)
		if y < x || y-x > 65535 {
			return nil, fmt.Errorf("bench: --source-ips %q: bad range", s)
		}
		for v := x; v <= y; v++ {
			out = append(out, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4())
		}
	}
	return out, nil
}

func ipv4Int(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}
