package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
)

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

const usage = `usage: erlmcp bench [flags]

Load-tests an MCP server over raw TCP (newline-delimited JSON-RPC) or
Streamable HTTP, and reports req/s, latency percentiles and errors by kind.
Runs stop by themselves (--duration, --requests). Targets must be loopback
unless --allow-remote.

examples:
  erlmcp bench --mode pingpong --conns 100 --duration 10s
  erlmcp bench --mode pipelined --depth 16 --transport http --url http://127.0.0.1:8080/mcp --stateless
  erlmcp bench --mode mixed --mix call=8,ping=1,list=1 --md --plot lat.svg
  erlmcp bench --mode idle --conns 19000 --pid $(pidof erlmcp) --source-ips 127.0.0.1-127.0.0.8 --procs 2

flags:
`

// Main is the erlmcp bench subcommand: it parses args, runs, and prints the
// result to stdout (text, --json or --md); progress and errors go to stderr.
// It returns the process exit code: 0, 1 when the run failed or every request
// failed, 2 for bad flags.
func Main(args []string, stdout, stderr io.Writer) int {
	if _, isFile := stderr.(*os.File); !isFile {
		// Worker processes' stderr is copied by exec's goroutines, beside our progress lines.
		stderr = &lockedWriter{w: stderr}
	}
	fs := flag.NewFlagSet("erlmcp bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var c Config
	fs.StringVar(&c.Mode, "mode", ModePingPong, "idle, pingpong, pipelined or mixed")
	fs.StringVar(&c.Transport, "transport", "tcp", "tcp (newline-delimited JSON-RPC) or http (Streamable HTTP POST)")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "TCP target host:port (--transport tcp)")
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080/mcp", "Streamable HTTP endpoint (--transport http)")
	fs.IntVar(&c.Conns, "conns", 64, "connections (sessions in idle mode)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to run, after --warmup (idle: how long to hold the sessions) (default 10s)")
	fs.Int64Var(&c.Requests, "requests", 0, "stop after this many requests in total (0: only --duration bounds the run)")
	fs.IntVar(&c.Depth, "depth", 0, "requests in flight per connection (pipelined and mixed; default 16; at most 1024)")
	fs.StringVar(&c.Method, "method", "call", "what pingpong and pipelined send: call (tools/call), ping or list (tools/list)")
	fs.StringVar(&c.Tool, "tool", "echo", "tool name for tools/call")
	fs.StringVar(&c.Args, "args", `{"text":"hello"}`, "tool arguments for tools/call, as a JSON object")
	fs.StringVar(&c.Mix, "mix", "", "mixed mode weights (default call=8,ping=1,list=1)")
	fs.BoolVar(&c.Stateless, "stateless", false, "stateless 2026-07-28 requests (MCP-Protocol-Version header and _meta), no initialize")
	fs.StringVar(&c.ProtocolVersion, "protocol-version", SessionVersion, "protocol version offered in initialize (session era)")
	fs.StringVar(&c.SourceIPs, "source-ips", "", "local addresses bound round-robin, e.g. 127.0.0.1-127.0.0.8 (64K ephemeral ports each)")
	fs.IntVar(&c.Procs, "procs", 1, "spread connections over N worker processes (raised automatically past the open-file limit)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "run this long before measuring (excluded from the figures)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: target requests/s over all connections (0: closed loop)")
	fs.DurationVar(&c.Timeout, "timeout", 0, "reply and connect timeout (default 5s)")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", 256, "connects+initializes in progress at once")
	fs.IntVar(&c.PID, "pid", 0, "server PID: sample its RSS, threads and CPU from /proc")
	fs.StringVar(&c.MetricsURL, "metrics", "", "server Prometheus URL to sample (process_resident_memory_bytes, go_goroutines), e.g. http://127.0.0.1:9090/metrics")
	fs.BoolVar(&c.HoldConns, "hold-conns", false, "idle mode over HTTP: keep each session's connection open (default: close it after initialize, hold the session alone)")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a non-loopback target")
	fs.BoolVar(&c.RetryUnanswered, "retry-unanswered", false, "requests (and initialize handshakes) left unanswered by a server-side close are retried on a new connection, not counted as errors (for servers whose drain never drops an executed request, e.g. across erlmcp upgrade)")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress line on stderr")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	asMD := fs.Bool("md", false, "print the result as a Markdown table")
	plot := fs.String("plot", "", "write a latency histogram and throughput chart to this SVG file")
	worker := fs.String("worker", "", "internal: run as a --procs worker with this JSON spec")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file (to check the client is not the bottleneck)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "erlmcp bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *worker != "" {
		return runWorker(*worker, stdout)
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "erlmcp bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "erlmcp bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	res, err := Run(&c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	case *asMD:
		WriteMarkdown(stdout, res)
	default:
		WriteText(stdout, res)
	}
	if *plot != "" {
		f, err := os.Create(*plot)
		if err == nil {
			err = WriteSVG(f, res)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "erlmcp bench: --plot %s: %v\n", *plot, err)
			return 1
		}
	}
	if res.Errors > 0 && res.Requests == 0 && res.Mode != ModeIdle {
		return 1
	}
	if res.Mode == ModeIdle && res.Server != nil && res.Server.Sessions == 0 {
		return 1
	}
	return 0
}
