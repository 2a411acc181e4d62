// Command erlmcp is the erlmcp-go daemon and its admin CLI.
//
//	erlmcp start [-config FILE]     serve in the foreground (embedded defaults without a file)
//	erlmcp stdio [-config FILE]     serve one session on stdin/stdout
//	erlmcp versions                 print version, commit, Go and dependency versions
//
// Every subcommand takes -h.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/erlmcp/erlmcp-go/bench"
	"github.com/erlmcp/erlmcp-go/server"
)

// Set at link time: -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: erlmcp <command> [flags]

commands:
  start      serve MCP in the foreground (TCP %s by default; no config file needed)
  stdio      serve one MCP session on stdin/stdout (logs go to stderr)
  versions   print version, commit, build date, Go version and dependencies (and the running server's)
  ping       ask the running server (control socket) for pong
  status     memory, connections, sessions, goroutines, uptime of the running server [-json]
  stop       stop the running server gracefully (drains in-flight requests)
  reopen_log reopen the log file (after logrotate)
  reload     re-read the config file; apply what can change live, list what needs a restart
  upgrade    start the new binary on the same sockets, then drain and stop the old one [-binary PATH]
  config check FILE   validate a config file

Run 'erlmcp <command> -h' for the flags of a command.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, server.DefaultSettings().Transports.TCP.Addr)
		return 2
	}
	switch args[0] {
	case "start":
		return runStart(args[1:], stderr)
	case "ping", "status", "stop", "reopen_log", "reload", "upgrade", "config":
		return runAdmin(args, stdout, stderr) // admin.go
	case "bench":
		return bench.Main(args[1:], stdout, stderr)
	case "stdio":
		return cmdStdio(args[1:], stdin, stdout, stderr)
	case "versions", "version", "-version", "--version":
		return cmdVersionsAll(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage, server.DefaultSettings().Transports.TCP.Addr)
		return 0
	}
	fmt.Fprintf(stderr, "erlmcp: unknown command %q\n", args[0])
	fmt.Fprintf(stderr, usage, server.DefaultSettings().Transports.TCP.Addr)
	return 2
}

func buildInfo() server.BuildInfo {
	return server.BuildInfo{Version: version, Commit: commit, Date: date}
}

// configFlags declares the flags shared by serving commands.
type configFlags struct {
	config  string
	addr    string
	profile string
	sets    setFlags
}

// setFlags collects repeated -set key=value overrides.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "path of the YAML configuration file (default: embedded defaults). See etc/erlmcp.yaml in a release")
	fs.StringVar(&c.addr, "transports.tcp.addr", "", "TCP listen address host:port, overriding the config (default 127.0.0.1:8080)")
	fs.Var(&c.sets, "set", "override one config key, e.g. -set observability.metrics.addr=127.0.0.1:9191 (repeatable; applied after the file and the environment)")
	fs.StringVar(&c.profile, "profile", "", "deployment profile (server.profile, ERLMCP_PROFILE): development, production, or conformance (registers the MCP conformance suite's fixtures)")
}

func (c *configFlags) load() (server.Settings, error) {
	st, err := server.LoadSettings(c.config)
	if err != nil {
		return st, err
	}
	for _, kv := range c.sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return st, fmt.Errorf("-set %q: want key=value", kv)
		}
		if err := st.Set(k, v); err != nil {
			return st, err
		}
	}
	if c.addr != "" {
		st.Transports.TCP.Addr = c.addr
	}
	if c.profile != "" {
		st.Server.Profile = c.profile
	}
	return st, st.Validate()
}

// newDaemon parses a serving command's flags, loads the settings and builds the daemon
// (logging to stderr). A non-zero code means the caller should exit with it.
func newDaemon(name string, args []string, stderr io.Writer) (*server.Daemon, server.Settings, configFlags, int) {
	fs := flag.NewFlagSet("erlmcp "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, server.Settings{}, cf, 2
	}
	st, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		return nil, st, cf, 1
	}
	d, err := server.NewDaemon(st, buildInfo(), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		return nil, st, cf, 1
	}
	return d, st, cf, 0
}

func cmdStart(args []string, stderr io.Writer) int {
	d, _, cf, code := newDaemon("start", args, stderr)
	if d == nil {
		return code
	}
	if err := d.Start(); err != nil {
		fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		return 1
	}
	d.SetConfigSource(cf.source()) // for erlmcp reload
	if err := d.StartControl(); err != nil {
		fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	// SIGHUP reopens the log file (logrotate's postrotate; `erlmcp reopen_log` does the same).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
wait:
	for {
		select {
		case <-hup:
			if err := d.ReopenLog(); err != nil && !errors.Is(err, server.ErrNoLogFile) {
				fmt.Fprintf(stderr, "erlmcp: reopening the log: %v\n", err)
			}
		case <-sigs:
			break wait
		case <-d.Done():
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.ShutdownTimeout())
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		fmt.Fprintf(stderr, "erlmcp: shutdown: %v\n", err)
		return 1
	}
	return 0
}

func cmdStdio(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// stdout carries MCP messages only: the daemon logs to stderr.
	d, st, _, code := newDaemon("stdio", args, stderr)
	if d == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := d.Server().ServeStdio(ctx, stdin, stdout, st.MessageSize.MaxRequestSize); err != nil {
		fmt.Fprintf(stderr, "erlmcp: stdio: %v\n", err)
		return 1
	}
	return 0
}

func cmdVersions(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("erlmcp versions", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	type dep struct {
		Path    string `json:"path"`
		Version string `json:"version"`
	}
	info := struct {
		server.BuildInfo
		Go           string `json:"go"`
		Platform     string `json:"platform"`
		Dependencies []dep  `json:"dependencies"`
	}{BuildInfo: buildInfo(), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			info.Dependencies = append(info.Dependencies, dep{m.Path, m.Version})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(info)
		return 0
	}
	fmt.Fprintf(stdout, "erlmcp %s (commit %s, built %s)\n%s %s\n", info.Version, info.Commit, info.Date, info.Go, info.Platform)
	fmt.Fprintf(stdout, "protocol versions: %v + %s (stateless)\n", server.SessionVersions, server.Version20260728)
	for _, d := range info.Dependencies {
		fmt.Fprintf(stdout, "  %s %s\n", d.Path, d.Version)
	}
	return 0
}
