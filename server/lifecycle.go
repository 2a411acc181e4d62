package server

import (
	"context"

	"github.com/erlmcp/erlmcp-go/codec"
)

// capabilities returns what this server declares: everything it implements, and the
// extensions declared for sessionEra (initialize) or the stateless era (server/discover).
func (s *Server) capabilities(sessionEra bool) ServerCapabilities {
	return ServerCapabilities{
		Logging:     &struct{}{},
		Completions: &struct{}{},
		Prompts:     &ListChangedCap{ListChanged: true},
		Resources:   &ResourcesCapability{Subscribe: true, ListChanged: true},
		Tools:       &ListChangedCap{ListChanged: true},
		Extensions:  s.extensionsFor(sessionEra),
	}
}

func (s *Server) serverInfo() Implementation {
	return Implementation{Name: s.cfg.Name, Title: s.cfg.Title, Version: s.cfg.Version}
}

// initialize negotiates the protocol version and records the client. Missing params or
// fields are accepted (lenient): the seed's `echo '{"…","params":{}}' | nc` must work.
func (s *Server) initialize(ctx context.Context, r *Request) (any, error) {
	var p InitializeParams
	if len(r.Params) > 0 {
		if err := codec.Unmarshal(r.Params, &p); err != nil {
			return nil, codec.NewError(codec.CodeInvalidParams, "initialize params: %v", err)
		}
	}
	v := negotiate(p.ProtocolVersion)
	ss := r.Session
	ss.mu.Lock()
	if ss.initialized {
		ss.mu.Unlock()
		return nil, codec.NewError(codec.CodeInvalidRequest, "session already initialized (protocol %s); open a new connection or session to initialize again", ss.version)
	}
	ss.initialized = true
	ss.version = v
	ss.clientInfo, ss.clientCaps = internClient(r.Params, p.ClientInfo, p.Capabilities)
	ss.mu.Unlock()
	if cn := s.cluster; cn != nil {
		cn.initialized(ss) // the session's record, for the other nodes
	}
	return &InitializeResult{
		ProtocolVersion: v.String(),
		Capabilities:    s.capabilities(true),
		ServerInfo:      s.serverInfo(),
		Instructions:    s.cfg.Instructions,
	}, nil
}

func (s *Server) ping(ctx context.Context, r *Request) (any, error) {
	return &EmptyResult{}, nil
}

// DiscoverResult is the result of server/discover (2026-07-28): what initialize told in the
// session era, available to stateless clients at any time.
// The serverInfo travels in _meta["io.modelcontextprotocol/serverInfo"]; resultType,
// ttlMs and cacheScope are added on the wire (stampResult).
type DiscoverResult struct {
	SupportedVersions []string           `json:"supportedVersions"`
	Capabilities      ServerCapabilities `json:"capabilities"`
	Instructions      string             `json:"instructions,omitempty"`
	Meta              Meta               `json:"_meta,omitempty"`
}

func (s *Server) discover(ctx context.Context, r *Request) (any, error) {
	caps := s.capabilities(false)
	// Stateless clients get list changes and resource updates only through
	// subscriptions/listen, which this server does not serve yet: do not promise them.
	caps.Prompts = &ListChangedCap{}
	caps.Tools = &ListChangedCap{}
	caps.Resources = &ResourcesCapability{}
	return &DiscoverResult{
		SupportedVersions: supportedVersions(),
		Capabilities:      caps,
		Instructions:      s.cfg.Instructions,
		Meta:              Meta{metaServerInfo: s.serverInfo()},
	}, nil
}

func (s *Server) setLevel(ctx context.Context, r *Request) (any, error) {
	var p SetLevelParams
	if err := decodeParams(r, &p); err != nil {
		return nil, err
	}
	sev := p.Level.severity()
	if sev == 0 {
		return nil, codec.NewError(codec.CodeInvalidParams, "unknown logging level %q: want one of debug, info, notice, warning, error, critical, alert, emergency", snippet(string(p.Level)))
	}
	r.Session.mu.Lock()
	r.Session.logLevel = sev
	r.Session.mu.Unlock()
	if cn := s.cluster; cn != nil {
		cn.levelSet(r.Session, p.Level)
	}
	return &EmptyResult{}, nil
}

// decodeParams decodes r.Params into v, answering -32602 with the reason on failure.
// Absent params decode as an empty object.
func decodeParams(r *Request, v any) error {
	if len(r.Params) == 0 {
		return nil
	}
	if err := codec.Unmarshal(r.Params, v); err != nil {
		return codec.NewError(codec.CodeInvalidParams, "invalid %s params: %v", r.Method, err)
	}
	return nil
}

// coarseNow returns the current unix second; sessions record activity with it.
func coarseNow() int64 { return coarseAt(monoNow()) }
