package server

import (
	"encoding/json"
	"fmt"

	"github.com/erlmcp/erlmcp-go/codec"
)

// This file holds the MCP wire types the server reads and writes. Names follow the
// specification (schema.ts of 2025-11-25): CallToolParams, CallToolResult, and so on.

// Method names of the MCP protocol.
const (
	MethodInitialize            = "initialize"
	MethodPing                  = "ping"
	MethodDiscover              = "server/discover"
	MethodToolsList             = "tools/list"
	MethodToolsCall             = "tools/call"
	MethodResourcesList         = "resources/list"
	MethodResourcesRead         = "resources/read"
	MethodResourcesTemplates    = "resources/templates/list"
	MethodResourcesSubscribe    = "resources/subscribe"
	MethodResourcesUnsubscribe  = "resources/unsubscribe"
	MethodPromptsList           = "prompts/list"
	MethodPromptsGet            = "prompts/get"
	MethodLoggingSetLevel       = "logging/setLevel"
	MethodCompletionComplete    = "completion/complete"
	MethodSamplingCreateMessage = "sampling/createMessage"
	MethodElicitationCreate     = "elicitation/create"
	MethodRootsList             = "roots/list"

	NotificationInitialized         = "notifications/initialized"
	NotificationCancelled           = "notifications/cancelled"
	NotificationProgress            = "notifications/progress"
	NotificationMessage             = "notifications/message"
	NotificationResourceUpdated     = "notifications/resources/updated"
	NotificationResourceListChanged = "notifications/resources/list_changed"
	NotificationToolListChanged     = "notifications/tools/list_changed"
	NotificationPromptListChanged   = "notifications/prompts/list_changed"
	NotificationRootsListChanged    = "notifications/roots/list_changed"
	NotificationElicitationComplete = "notifications/elicitation/complete"
)

// Meta is the `_meta` member that requests, results and most objects may carry.
type Meta map[string]any

// Icon is an image a client may show for a server, tool, resource or prompt.
type Icon struct {
	Src      string   `json:"src"`
	MimeType string   `json:"mimeType,omitempty"`
	Sizes    []string `json:"sizes,omitempty"`
	Theme    string   `json:"theme,omitempty"`
}

// Implementation names a client or server program.
type Implementation struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	WebsiteURL  string `json:"websiteUrl,omitempty"`
	Icons       []Icon `json:"icons,omitempty"`
}

// ClientCapabilities is what a client declares in initialize (or per request in _meta).
type ClientCapabilities struct {
	Experimental map[string]any       `json:"experimental,omitempty"`
	Roots        *RootsCapability     `json:"roots,omitempty"`
	Sampling     *json.RawMessage     `json:"sampling,omitempty"`
	Elicitation  *ElicitationCapacity `json:"elicitation,omitempty"`
	Tasks        *json.RawMessage     `json:"tasks,omitempty"`
	Extensions   map[string]any       `json:"extensions,omitempty"`
}

// RootsCapability is the client's roots capability.
type RootsCapability struct {
	ListChanged bool `json:"listChanged,omitempty"`
}

// ElicitationCapacity is the client's elicitation capability: form and/or URL mode.
// An empty object means form mode only (2025-06-18).
type ElicitationCapacity struct {
	Form *json.RawMessage `json:"form,omitempty"`
	URL  *json.RawMessage `json:"url,omitempty"`
}

// ServerCapabilities is what this server declares.
type ServerCapabilities struct {
	Experimental map[string]any       `json:"experimental,omitempty"`
	Logging      *struct{}            `json:"logging,omitempty"`
	Completions  *struct{}            `json:"completions,omitempty"`
	Prompts      *ListChangedCap      `json:"prompts,omitempty"`
	Resources    *ResourcesCapability `json:"resources,omitempty"`
	Tools        *ListChangedCap      `json:"tools,omitempty"`
	Tasks        any                  `json:"tasks,omitempty"`
	Extensions   map[string]any       `json:"extensions,omitempty"`
}

// ListChangedCap is a capability with a listChanged flag.
type ListChangedCap struct {
	ListChanged bool `json:"listChanged,omitempty"`
}

// ResourcesCapability is the server's resources capability.
type ResourcesCapability struct {
	Subscribe   bool `json:"subscribe,omitempty"`
	ListChanged bool `json:"listChanged,omitempty"`
}

// InitializeParams is the params of initialize.
type InitializeParams struct {
	ProtocolVersion string             `json:"protocolVersion"`
	Capabilities    ClientCapabilities `json:"capabilities"`
	ClientInfo      Implementation     `json:"clientInfo"`
	Meta            Meta               `json:"_meta,omitempty"`
}

// InitializeResult is the result of initialize.
type InitializeResult struct {
	ProtocolVersion string             `json:"protocolVersion"`
	Capabilities    ServerCapabilities `json:"capabilities"`
	ServerInfo      Implementation     `json:"serverInfo"`
	Instructions    string             `json:"instructions,omitempty"`
	Meta            Meta               `json:"_meta,omitempty"`
}

// EmptyResult is the result of ping, logging/setLevel, subscribe and unsubscribe.
type EmptyResult struct {
	Meta Meta `json:"_meta,omitempty"`
}

// PaginatedParams is the params of every list method.
type PaginatedParams struct {
	Cursor string `json:"cursor,omitempty"`
	Meta   Meta   `json:"_meta,omitempty"`
}

// ToolAnnotations are hints about a tool's behaviour.
type ToolAnnotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    *bool  `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool  `json:"destructiveHint,omitempty"`
	IdempotentHint  *bool  `json:"idempotentHint,omitempty"`
	OpenWorldHint   *bool  `json:"openWorldHint,omitempty"`
}

// ToolExecution says how a tool may be run (tasks extension).
type ToolExecution struct {
	TaskSupport string `json:"taskSupport,omitempty"` // "forbidden" (default), "optional", "required"
}

// Tool describes a tool as tools/list shows it.
type Tool struct {
	Name         string           `json:"name"`
	Title        string           `json:"title,omitempty"`
	Description  string           `json:"description,omitempty"`
	InputSchema  json.RawMessage  `json:"inputSchema"`
	OutputSchema json.RawMessage  `json:"outputSchema,omitempty"`
	Annotations  *ToolAnnotations `json:"annotations,omitempty"`
	Execution    *ToolExecution   `json:"execution,omitempty"`
	Icons        []Icon           `json:"icons,omitempty"`
	Meta         Meta             `json:"_meta,omitempty"`
}

// ListToolsResult is the result of tools/list.
type ListToolsResult struct {
	Tools      []*Tool `json:"tools"`
	NextCursor string  `json:"nextCursor,omitempty"`
	Meta       Meta    `json:"_meta,omitempty"`
}

// CallToolParams is the params of tools/call. Arguments stay raw until the tool decodes them.
type CallToolParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Meta      Meta            `json:"_meta,omitempty"`
}

// CallToolResult is the result of tools/call. A tool's own failure is reported with
// IsError and content, not as a protocol error.
type CallToolResult struct {
	Content           []Content `json:"content"`
	StructuredContent any       `json:"structuredContent,omitempty"`
	IsError           bool      `json:"isError,omitempty"`
	Meta              Meta      `json:"_meta,omitempty"`
}

// UnmarshalJSON decodes content of any kind (for clients of the library and tests).
func (r *CallToolResult) UnmarshalJSON(b []byte) error {
	var raw struct {
		Content           []rawContent    `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
		Meta              Meta            `json:"_meta"`
	}
	if err := codec.Unmarshal(b, &raw); err != nil {
		return err
	}
	r.Content = make([]Content, 0, len(raw.Content))
	for i := range raw.Content {
		c, err := raw.Content[i].content()
		if err != nil {
			return err
		}
		r.Content = append(r.Content, c)
	}
	if len(raw.StructuredContent) > 0 {
		r.StructuredContent = raw.StructuredContent
	}
	r.IsError, r.Meta = raw.IsError, raw.Meta
	return nil
}

// Annotations guide how a client uses content.
type Annotations struct {
	Audience     []string `json:"audience,omitempty"`
	Priority     *float64 `json:"priority,omitempty"`
	LastModified string   `json:"lastModified,omitempty"`
}

// Content is one item of tool or prompt content: *TextContent, *ImageContent,
// *AudioContent, *EmbeddedResource or *ResourceLink.
type Content interface{ contentType() string }

// TextContent is text.
type TextContent struct {
	Type        string       `json:"type"`
	Text        string       `json:"text"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Meta        Meta         `json:"_meta,omitempty"`
}

// ImageContent is a base64-encoded image.
type ImageContent struct {
	Type        string       `json:"type"`
	Data        string       `json:"data"`
	MimeType    string       `json:"mimeType"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Meta        Meta         `json:"_meta,omitempty"`
}

// AudioContent is base64-encoded audio.
type AudioContent struct {
	Type        string       `json:"type"`
	Data        string       `json:"data"`
	MimeType    string       `json:"mimeType"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Meta        Meta         `json:"_meta,omitempty"`
}

// EmbeddedResource carries a resource's contents inline.
type EmbeddedResource struct {
	Type        string            `json:"type"`
	Resource    *ResourceContents `json:"resource"`
	Annotations *Annotations      `json:"annotations,omitempty"`
	Meta        Meta              `json:"_meta,omitempty"`
}

// ResourceLink points at a resource the client may read.
type ResourceLink struct {
	Type        string       `json:"type"`
	URI         string       `json:"uri"`
	Name        string       `json:"name"`
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	MimeType    string       `json:"mimeType,omitempty"`
	Size        *int64       `json:"size,omitempty"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Icons       []Icon       `json:"icons,omitempty"`
	Meta        Meta         `json:"_meta,omitempty"`
}

func (*TextContent) contentType() string      { return "text" }
func (*ImageContent) contentType() string     { return "image" }
func (*AudioContent) contentType() string     { return "audio" }
func (*EmbeddedResource) contentType() string { return "resource" }
func (*ResourceLink) contentType() string     { return "resource_link" }

// Text returns text content.
func Text(s string) *TextContent { return &TextContent{Type: "text", Text: s} }

// Image returns image content; data is base64-encoded already.
func Image(base64Data, mimeType string) *ImageContent {
	return &ImageContent{Type: "image", Data: base64Data, MimeType: mimeType}
}

// Audio returns audio content; data is base64-encoded already.
func Audio(base64Data, mimeType string) *AudioContent {
	return &AudioContent{Type: "audio", Data: base64Data, MimeType: mimeType}
}

// Embedded returns an embedded resource.
func Embedded(rc *ResourceContents) *EmbeddedResource {
	return &EmbeddedResource{Type: "resource", Resource: rc}
}

// Link returns a resource link.
func Link(uri, name, mimeType string) *ResourceLink {
	return &ResourceLink{Type: "resource_link", URI: uri, Name: name, MimeType: mimeType}
}

// rawContent decodes any content kind; used for results that come from clients
// (sampling) where the type is known only at run time.
type rawContent struct {
	Type        string            `json:"type"`
	Text        string            `json:"text,omitempty"`
	Data        string            `json:"data,omitempty"`
	MimeType    string            `json:"mimeType,omitempty"`
	Resource    *ResourceContents `json:"resource,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Name        string            `json:"name,omitempty"`
	Annotations *Annotations      `json:"annotations,omitempty"`
}

func (r *rawContent) content() (Content, error) {
	switch r.Type {
	case "text":
		return &TextContent{Type: "text", Text: r.Text, Annotations: r.Annotations}, nil
	case "image":
		return &ImageContent{Type: "image", Data: r.Data, MimeType: r.MimeType, Annotations: r.Annotations}, nil
	case "audio":
		return &AudioContent{Type: "audio", Data: r.Data, MimeType: r.MimeType, Annotations: r.Annotations}, nil
	case "resource":
		return &EmbeddedResource{Type: "resource", Resource: r.Resource, Annotations: r.Annotations}, nil
	case "resource_link":
		return &ResourceLink{Type: "resource_link", URI: r.URI, Name: r.Name, MimeType: r.MimeType, Annotations: r.Annotations}, nil
	}
	return nil, fmt.Errorf("server: unknown content type %q", r.Type)
}

// Resource describes a resource as resources/list shows it.
type Resource struct {
	URI         string       `json:"uri"`
	Name        string       `json:"name"`
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	MimeType    string       `json:"mimeType,omitempty"`
	Size        *int64       `json:"size,omitempty"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Icons       []Icon       `json:"icons,omitempty"`
	Meta        Meta         `json:"_meta,omitempty"`
}

// ResourceTemplate describes a family of resources by an RFC 6570 URI template.
type ResourceTemplate struct {
	URITemplate string       `json:"uriTemplate"`
	Name        string       `json:"name"`
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	MimeType    string       `json:"mimeType,omitempty"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Icons       []Icon       `json:"icons,omitempty"`
	Meta        Meta         `json:"_meta,omitempty"`
}

// ResourceContents is the contents of one resource: Text or Blob (base64). A contents with
// no Blob is text, and its "text" member is always sent, "" included: the spec's
// TextResourceContents requires it, and the TS SDK clients reject a text resource without
// it ("text: expected string"). A non-empty Blob is sent as "blob" and Text is then dropped.
type ResourceContents struct {
	URI      string `json:"uri"`
	MimeType string `json:"mimeType,omitempty"`
	Text     string `json:"text,omitempty"`
	Blob     string `json:"blob,omitempty"`
	Meta     Meta   `json:"_meta,omitempty"`
}

// textContents and blobContents are the two wire forms of ResourceContents.
type textContents struct {
	URI      string `json:"uri"`
	MimeType string `json:"mimeType,omitempty"`
	Text     string `json:"text"`
	Meta     Meta   `json:"_meta,omitempty"`
}

type blobContents struct {
	URI      string `json:"uri"`
	MimeType string `json:"mimeType,omitempty"`
	Blob     string `json:"blob"`
	Meta     Meta   `json:"_meta,omitempty"`
}

// MarshalJSON writes the text form (with "text", even when empty) or, when Blob is set,
// the blob form.
func (rc ResourceContents) MarshalJSON() ([]byte, error) {
	if rc.Blob != "" {
		return codec.Marshal(blobContents{URI: rc.URI, MimeType: rc.MimeType, Blob: rc.Blob, Meta: rc.Meta})
	}
	return codec.Marshal(textContents{URI: rc.URI, MimeType: rc.MimeType, Text: rc.Text, Meta: rc.Meta})
}

// ListResourcesResult is the result of resources/list.
type ListResourcesResult struct {
	Resources  []*Resource `json:"resources"`
	NextCursor string      `json:"nextCursor,omitempty"`
	Meta       Meta        `json:"_meta,omitempty"`
}

// ListResourceTemplatesResult is the result of resources/templates/list.
type ListResourceTemplatesResult struct {
	ResourceTemplates []*ResourceTemplate `json:"resourceTemplates"`
	NextCursor        string              `json:"nextCursor,omitempty"`
	Meta              Meta                `json:"_meta,omitempty"`
}

// ReadResourceParams is the params of resources/read.
type ReadResourceParams struct {
	URI  string `json:"uri"`
	Meta Meta   `json:"_meta,omitempty"`
}

// ReadResourceResult is the result of resources/read.
type ReadResourceResult struct {
	Contents []*ResourceContents `json:"contents"`
	Meta     Meta                `json:"_meta,omitempty"`
}

// SubscribeParams is the params of resources/subscribe and resources/unsubscribe.
type SubscribeParams struct {
	URI  string `json:"uri"`
	Meta Meta   `json:"_meta,omitempty"`
}

// ResourceUpdatedParams is the params of notifications/resources/updated.
type ResourceUpdatedParams struct {
	URI string `json:"uri"`
}

// PromptArgument describes one argument of a prompt.
type PromptArgument struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// Prompt describes a prompt as prompts/list shows it.
type Prompt struct {
	Name        string            `json:"name"`
	Title       string            `json:"title,omitempty"`
	Description string            `json:"description,omitempty"`
	Arguments   []*PromptArgument `json:"arguments,omitempty"`
	Icons       []Icon            `json:"icons,omitempty"`
	Meta        Meta              `json:"_meta,omitempty"`
}

// ListPromptsResult is the result of prompts/list.
type ListPromptsResult struct {
	Prompts    []*Prompt `json:"prompts"`
	NextCursor string    `json:"nextCursor,omitempty"`
	Meta       Meta      `json:"_meta,omitempty"`
}

// GetPromptParams is the params of prompts/get.
type GetPromptParams struct {
	Name      string            `json:"name"`
	Arguments map[string]string `json:"arguments,omitempty"`
	Meta      Meta              `json:"_meta,omitempty"`
}

// PromptMessage is one message of a prompt.
type PromptMessage struct {
	Role    string  `json:"role"` // "user" or "assistant"
	Content Content `json:"content"`
}

// GetPromptResult is the result of prompts/get.
type GetPromptResult struct {
	Description string           `json:"description,omitempty"`
	Messages    []*PromptMessage `json:"messages"`
	Meta        Meta             `json:"_meta,omitempty"`
}

// CompleteReference names what an argument completion is for: a prompt ("ref/prompt", Name)
// or a resource template ("ref/resource", URI).
type CompleteReference struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	URI  string `json:"uri,omitempty"`
}

// CompleteArgument is the argument being completed.
type CompleteArgument struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CompleteContext carries already-resolved arguments.
type CompleteContext struct {
	Arguments map[string]string `json:"arguments,omitempty"`
}

// CompleteParams is the params of completion/complete.
type CompleteParams struct {
	Ref      CompleteReference `json:"ref"`
	Argument CompleteArgument  `json:"argument"`
	Context  *CompleteContext  `json:"context,omitempty"`
	Meta     Meta              `json:"_meta,omitempty"`
}

// Completion is a list of suggested values.
type Completion struct {
	Values  []string `json:"values"`
	Total   int      `json:"total,omitempty"`
	HasMore bool     `json:"hasMore,omitempty"`
}

// CompleteResult is the result of completion/complete.
type CompleteResult struct {
	Completion Completion `json:"completion"`
	Meta       Meta       `json:"_meta,omitempty"`
}

// SetLevelParams is the params of logging/setLevel.
type SetLevelParams struct {
	Level LoggingLevel `json:"level"`
	Meta  Meta         `json:"_meta,omitempty"`
}

// LoggingMessageParams is the params of notifications/message.
type LoggingMessageParams struct {
	Level  LoggingLevel `json:"level"`
	Logger string       `json:"logger,omitempty"`
	Data   any          `json:"data"`
}

// ProgressParams is the params of notifications/progress.
type ProgressParams struct {
	ProgressToken json.RawMessage `json:"progressToken"`
	Progress      float64         `json:"progress"`
	Total         float64         `json:"total,omitempty"`
	Message       string          `json:"message,omitempty"`
}

// CancelledParams is the params of notifications/cancelled.
type CancelledParams struct {
	RequestID json.RawMessage `json:"requestId"`
	Reason    string          `json:"reason,omitempty"`
}

// SamplingMessage is one message of a sampling request or result.
type SamplingMessage struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// UnmarshalJSON decodes content of any kind.
func (m *SamplingMessage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role    string     `json:"role"`
		Content rawContent `json:"content"`
	}
	if err := codec.Unmarshal(b, &raw); err != nil {
		return err
	}
	c, err := raw.Content.content()
	if err != nil {
		return err
	}
	m.Role, m.Content = raw.Role, c
	return nil
}

// ModelHint and ModelPreferences steer the client's model choice.
type ModelHint struct {
	Name string `json:"name,omitempty"`
}

// ModelPreferences are the server's model preferences for sampling.
type ModelPreferences struct {
	Hints                []ModelHint `json:"hints,omitempty"`
	CostPriority         *float64    `json:"costPriority,omitempty"`
	SpeedPriority        *float64    `json:"speedPriority,omitempty"`
	IntelligencePriority *float64    `json:"intelligencePriority,omitempty"`
}

// CreateMessageParams is the params of sampling/createMessage.
type CreateMessageParams struct {
	Messages         []*SamplingMessage `json:"messages"`
	ModelPreferences *ModelPreferences  `json:"modelPreferences,omitempty"`
	SystemPrompt     string             `json:"systemPrompt,omitempty"`
	IncludeContext   string             `json:"includeContext,omitempty"`
	Temperature      *float64           `json:"temperature,omitempty"`
	MaxTokens        int                `json:"maxTokens"`
	StopSequences    []string           `json:"stopSequences,omitempty"`
	Metadata         any                `json:"metadata,omitempty"`
	Meta             Meta               `json:"_meta,omitempty"`
}

// CreateMessageResult is the result of sampling/createMessage.
type CreateMessageResult struct {
	Role       string  `json:"role"`
	Content    Content `json:"content"`
	Model      string  `json:"model"`
	StopReason string  `json:"stopReason,omitempty"`
	Meta       Meta    `json:"_meta,omitempty"`
}

// UnmarshalJSON decodes content of any kind.
func (r *CreateMessageResult) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role       string     `json:"role"`
		Content    rawContent `json:"content"`
		Model      string     `json:"model"`
		StopReason string     `json:"stopReason"`
		Meta       Meta       `json:"_meta"`
	}
	if err := codec.Unmarshal(b, &raw); err != nil {
		return err
	}
	c, err := raw.Content.content()
	if err != nil {
		return err
	}
	r.Role, r.Content, r.Model, r.StopReason, r.Meta = raw.Role, c, raw.Model, raw.StopReason, raw.Meta
	return nil
}

// ElicitParams is the params of elicitation/create. Mode "form" (default) asks for
// RequestedSchema; mode "url" sends the user to URL.
type ElicitParams struct {
	Mode            string          `json:"mode,omitempty"`
	Message         string          `json:"message"`
	RequestedSchema json.RawMessage `json:"requestedSchema,omitempty"`
	URL             string          `json:"url,omitempty"`
	ElicitationID   string          `json:"elicitationId,omitempty"`
	Meta            Meta            `json:"_meta,omitempty"`
}

// ElicitResult is the result of elicitation/create.
type ElicitResult struct {
	Action  string         `json:"action"` // "accept", "decline", "cancel"
	Content map[string]any `json:"content,omitempty"`
	Meta    Meta           `json:"_meta,omitempty"`
}

// Root is a filesystem or URI root the client exposes.
type Root struct {
	URI  string `json:"uri"`
	Name string `json:"name,omitempty"`
}

// ListRootsResult is the result of roots/list.
type ListRootsResult struct {
	Roots []*Root `json:"roots"`
	Meta  Meta    `json:"_meta,omitempty"`
}
