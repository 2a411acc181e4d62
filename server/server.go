// Package server gives MCP its meaning: sessions and their lifecycle, version negotiation,
// the registries of tools, resources, prompts and completions, dispatch, notifications,
// subscriptions, progress, cancellation and server→client requests. Transports (TCP lines on
// loop/, stdio, HTTP) hand it frames and an Output to answer on; it knows nothing of epoll.
//
// Several processes behind a load balancer can share the session-era HTTP sessions, tasks
// and notifications through Redis: EnableCluster (cluster.go, package server/cluster).
// With it off, which is the default, its hooks are nil checks.
//
// A minimal server:
//
//	s := server.New(server.Config{Name: "demo", Version: "1.0.0"})
//	type In struct {
//		Text string `json:"text" jsonschema:"the text to echo"`
//	}
//	server.AddTool(s, &server.Tool{Name: "echo"}, func(ctx context.Context, r *server.Request, in In) (*server.CallToolResult, any, error) {
//		return &server.CallToolResult{Content: []server.Content{server.Text(in.Text)}}, nil, nil
//	})
//	err := s.ServeStdio(ctx, os.Stdin, os.Stdout)
package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/pool"
)

// Config configures a Server. The zero value is usable: every field documents its default.
// New copies it, so later changes by the caller have no effect.
type Config struct {
	// Name and Version are the serverInfo of initialize. Default "erlmcp" and "dev".
	Name    string `json:"name"`
	Version string `json:"version"`
	// Title is serverInfo.title (optional).
	Title string `json:"title"`
	// Instructions is the initialize result's instructions (optional).
	Instructions string `json:"instructions"`
	// PageSize is how many entries one page of a list method holds. Default 100.
	PageSize int `json:"page_size"`
	// StrictLifecycle refuses every request but initialize and ping before initialize has
	// been answered (error -32008). Default false: requests before initialize are served
	// with the latest protocol version, so one-shot clients (`echo … | nc`) work.
	StrictLifecycle bool `json:"strict_lifecycle"`
	// NoSchemaValidation turns off checking tools/call arguments against each tool's
	// inputSchema and structured results against its outputSchema, for every tool
	// (schema_validator.enabled: false). Schemas are still compiled at registration, so
	// a malformed one is refused there either way.
	NoSchemaValidation bool `json:"no_schema_validation"`
	// ToolAccess, if set, says whether r's caller may use a tool (Limits: it holds the
	// tool's scopes): tools/list shows only the tools it returns nil for (pages still hold
	// PageSize of them), and tools/call of another tool fails with its error before the
	// arguments are validated.
	ToolAccess func(r *Request, tool string) error `json:"-"`
	// Workers bounds the goroutines that run slow handlers (tools/call and other user
	// handlers not marked inline). Defaults in pool.WorkersConfig.
	Workers pool.WorkersConfig `json:"workers"`
	// ClientRequestTimeout bounds how long a server→client request (sampling, elicitation,
	// roots) waits for the client's answer. Default 60s.
	ClientRequestTimeout time.Duration `json:"client_request_timeout"`
	// MaxDepth bounds JSON nesting of incoming messages. Default codec.DefaultMaxDepth.
	MaxDepth int `json:"max_depth"`
	// MaxResponseBytes bounds one encoded response; a larger one is replaced by error
	// -32012. Default 10 MiB.
	MaxResponseBytes int `json:"max_response_bytes"`
	// Logger receives the server's own logs. Default: discarded.
	Logger *slog.Logger `json:"-"`
	// Middleware wraps every request handler, outermost first.
	Middleware []Middleware `json:"-"`
	// Admit, when set, is asked about every request before its params are decoded or it is
	// queued (memory guard, credentials, rate limits: Limits.Admit); an error refuses the
	// request before it costs more than its frame.
	Admit func(r *Request) error `json:"-"`
	// Observer, when set, is told about every request served (metrics, tracing).
	Observer Observer `json:"-"`
	// MaxSessions bounds the sessions transports open with OpenSession (TCP, TLS and stdio
	// connections, Streamable HTTP and legacy SSE sessions); 0: no bound.
	MaxSessions int `json:"max_sessions"`
	// MaxSessionsPerPrincipal bounds those sessions per principal (authenticated subject,
	// else client address); 0: no bound.
	MaxSessionsPerPrincipal int `json:"max_sessions_per_principal"`
}

const (
	defaultPageSize         = 100
	defaultClientReqTimeout = 60 * time.Second
	defaultMaxResponseBytes = 10 << 20
)

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "erlmcp"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.PageSize <= 0 {
		c.PageSize = defaultPageSize
	}
	if c.ClientRequestTimeout <= 0 {
		c.ClientRequestTimeout = defaultClientReqTimeout
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = codec.DefaultMaxDepth
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = defaultMaxResponseBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Observer is told about requests; implementations must be cheap and safe for concurrent use.
// Metrics and tracing plug in here.
type Observer interface {
	// RequestDone is called once per request or notification served, with its outcome:
	// code 0 for success, else the JSON-RPC error code sent.
	RequestDone(transport, method string, code codec.Code, elapsed time.Duration)
}

// Output is where a transport lets the server answer. A Session has one for unsolicited
// messages; each request has one for its reply and related notifications.
type Output interface {
	// Reply queues one message (without framing) as a reply to what is being handled
	// right now; the transport may batch replies and write them together. Only called
	// from the goroutine that handed the frame in, before that call returns.
	Reply(msg []byte)
	// Send writes one message now. Safe from any goroutine.
	Send(msg []byte) error
	// Hold and Release bracket asynchronous work whose reply will come through Send,
	// so the transport keeps the connection (and a half-closed peer) until it is done.
	Hold()
	Release()
}

// Server is an MCP server. It is safe for concurrent use by any number of transports.
type Server struct {
	cfg     Config
	dec     codec.Decoder
	workers *pool.Workers
	log     *slog.Logger

	tools       registry[*toolEntry]
	resources   registry[*resourceEntry]
	templates   registry[*templateEntry]
	prompts     registry[*promptEntry]
	completions atomic.Pointer[CompletionHandler]

	sessions sessionTable
	caps     sessionCaps
	subs     subscriptions

	// ext is what extensions added: methods (extMethods, read lock-free) and capabilities
	// (extensions.go); taskStore is the tasks extension's store, made on first use.
	ext        extState
	extMethods atomic.Pointer[map[string]*methodInfo]
	taskStore  atomic.Pointer[taskStore]

	// cluster is cluster mode's side (cluster.go); nil when off, which every hook checks
	// first and which costs nothing else.
	cluster *clusterNode

	// stateKey seals 2026 requestState (stateless.go): random per Server unless
	// SetStateKey shares one across nodes.
	stateKey []byte

	// handle is the middleware-wrapped request handler.
	handle Handler

	closing atomic.Bool
}

// New returns a Server configured by cfg (copied).
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:     cfg,
		dec:     codec.Decoder{MaxDepth: cfg.MaxDepth},
		workers: pool.NewWorkers(cfg.Workers),
		log:     cfg.Logger,

		stateKey: newStateKey(),
	}
	s.sessions.init()
	s.caps.init(cfg.MaxSessions, cfg.MaxSessionsPerPrincipal)
	var h Handler = s.route
	for i := len(cfg.Middleware) - 1; i >= 0; i-- {
		h = cfg.Middleware[i](h)
	}
	s.handle = h
	return s
}

// Config returns a copy of the server's configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Stats is a point-in-time view of the server.
type Stats struct {
	Sessions          int
	Tools             int
	Resources         int
	ResourceTemplates int
	Prompts           int
	WorkersRunning    int
	WorkersQueued     int
	Subscriptions     int
	// SessionsRefused counts sessions OpenSession refused over a session cap.
	SessionsRefused uint64
	// MaxSessions is Config.MaxSessions (0: no bound).
	MaxSessions int
}

// Stats returns counts of sessions, registered entries and busy workers.
func (s *Server) Stats() Stats {
	running, queued := s.workers.Stats()
	return Stats{
		Sessions:          s.sessions.len(),
		Tools:             s.tools.len(),
		Resources:         s.resources.len(),
		ResourceTemplates: s.templates.len(),
		Prompts:           s.prompts.len(),
		WorkersRunning:    running,
		WorkersQueued:     queued,
		Subscriptions:     s.subs.len(),
		SessionsRefused:   s.caps.refused.Load(),
		MaxSessions:       s.cfg.MaxSessions,
	}
}

// Shutdown stops taking slow work and waits for the work in flight to finish, or for ctx.
// Transports are shut down by their owners first, so no new frames arrive. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	if err := s.workers.Shutdown(ctx); err != nil {
		return fmt.Errorf("server: waiting for in-flight handlers: %w", err)
	}
	return nil
}
