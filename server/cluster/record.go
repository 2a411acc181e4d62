package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned by GetSession and GetTask when Redis holds no such record.
var ErrNotFound = errors.New("cluster: no such record")

// SessionRecord is the metadata of one session-era HTTP session that any node needs to
// serve it: what initialize negotiated and what the client asked for since.
type SessionRecord struct {
	// ID is the Mcp-Session-Id.
	ID string
	// ProtocolVersion is the negotiated version ("2025-11-25").
	ProtocolVersion string
	// ClientInfo and ClientCapabilities are the client's initialize params, as JSON.
	ClientInfo         json.RawMessage
	ClientCapabilities json.RawMessage
	// LogLevel is what logging/setLevel set ("" before).
	LogLevel string
	// Subscriptions are the resource URIs the client subscribed to, sorted.
	Subscriptions []string
	// Owner is the node holding the session's GET stream (the node that created it until
	// a GET lands elsewhere).
	Owner string
	// Created is when initialize was answered (millisecond precision).
	Created time.Time
}

// Hash fields of a session record. Subscriptions are one field each ("sub:" + URI) so
// that subscribing on one node and unsubscribing on another never overwrite each other.
const (
	fieldVersion    = "v"
	fieldClientInfo = "ci"
	fieldClientCaps = "cc"
	fieldLogLevel   = "lvl"
	fieldOwner      = "own"
	fieldCreated    = "at"
	fieldSubPrefix  = "sub:"
)

// appendFields appends the record's hash fields as field, value pairs (HSET arguments).
func (r *SessionRecord) appendFields(args []any) []any {
	args = append(args, fieldVersion, r.ProtocolVersion, fieldCreated, strconv.FormatInt(r.Created.UnixMilli(), 10))
	if len(r.ClientInfo) > 0 {
		args = append(args, fieldClientInfo, string(r.ClientInfo))
	}
	if len(r.ClientCapabilities) > 0 {
		args = append(args, fieldClientCaps, string(r.ClientCapabilities))
	}
	if r.LogLevel != "" {
		args = append(args, fieldLogLevel, r.LogLevel)
	}
	if r.Owner != "" {
		args = append(args, fieldOwner, r.Owner)
	}
	for _, uri := range r.Subscriptions {
		args = append(args, fieldSubPrefix+uri, "1")
	}
	return args
}

// Fields returns the record as the hash fields stored in Redis.
func (r *SessionRecord) Fields() map[string]string {
	args := r.appendFields(nil)
	m := make(map[string]string, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		m[args[i].(string)] = args[i+1].(string)
	}
	return m
}

// DecodeSessionRecord reads a record from its hash fields (HGETALL). A hash without the
// protocol version is not a record (a patch that raced an expiry): ErrNotFound.
func DecodeSessionRecord(id string, fields map[string]string) (*SessionRecord, error) {
	v, ok := fields[fieldVersion]
	if !ok || v == "" {
		return nil, ErrNotFound
	}
	r := &SessionRecord{ID: id, ProtocolVersion: v, LogLevel: fields[fieldLogLevel], Owner: fields[fieldOwner]}
	if s := fields[fieldClientInfo]; s != "" {
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("cluster: session %s: field %s is not JSON", id, fieldClientInfo)
		}
		r.ClientInfo = json.RawMessage(s)
	}
	if s := fields[fieldClientCaps]; s != "" {
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("cluster: session %s: field %s is not JSON", id, fieldClientCaps)
		}
		r.ClientCapabilities = json.RawMessage(s)
	}
	if s := fields[fieldCreated]; s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cluster: session %s: field %s=%q is not unix milliseconds", id, fieldCreated, s)
		}
		r.Created = time.UnixMilli(ms)
	}
	for f := range fields {
		if uri, ok := strings.CutPrefix(f, fieldSubPrefix); ok {
			r.Subscriptions = append(r.Subscriptions, uri)
		}
	}
	sort.Strings(r.Subscriptions)
	return r, nil
}

// TaskRecord is a task of the tasks extension as other nodes see it: which node runs it
// and what tasks/get answers.
type TaskRecord struct {
	ID string `json:"id"`
	// Node runs the task: tasks/update and tasks/cancel are routed to it.
	Node string `json:"node"`
	// Detail is the tasks/get result as JSON.
	Detail json.RawMessage `json:"detail"`
	// TTL is how long the record lives after this write.
	TTL time.Duration `json:"-"`
}

// EncodeTaskRecord is the JSON stored under task:<id>.
func EncodeTaskRecord(r *TaskRecord) ([]byte, error) { return json.Marshal(r) }

// DecodeTaskRecord reads what EncodeTaskRecord wrote.
func DecodeTaskRecord(b []byte) (*TaskRecord, error) {
	var r TaskRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cluster: task record: %w", err)
	}
	if r.ID == "" || r.Node == "" {
		return nil, fmt.Errorf("cluster: task record without id or node")
	}
	return &r, nil
}

// Message kinds. Broadcast on the bus channel: ResourceUpdated, ListChanged,
// SessionEnded, SessionChanged. Sent to one node's channel: Deliver, TaskUpdate,
// TaskCancel.
const (
	// KindResourceUpdated: URI changed; each node notifies the subscribed sessions it owns.
	KindResourceUpdated = "resource_updated"
	// KindListChanged: Method (notifications/tools/list_changed, …) for every session.
	KindListChanged = "list_changed"
	// KindSessionEnded: Session was deleted (DELETE); nodes drop their copies.
	KindSessionEnded = "session_ended"
	// KindSessionChanged: a patch of Session's metadata (Level, Owner, Subs) that nodes
	// holding a copy apply. An ownership claim is a change of Owner.
	KindSessionChanged = "session_changed"
	// KindDeliver: Data is a JSON-RPC message for Session's stream on the receiving node.
	KindDeliver = "deliver"
	// KindTaskUpdate: Data is tasks/update's inputResponses for Task.
	KindTaskUpdate = "task_update"
	// KindTaskCancel: cancel Task.
	KindTaskCancel = "task_cancel"
)

// Message is one bus message.
type Message struct {
	Kind string `json:"k"`
	// From is the node that published it (set by Broadcast and SendTo).
	From    string `json:"f"`
	Session string `json:"s,omitempty"`
	Task    string `json:"t,omitempty"`
	URI     string `json:"u,omitempty"`
	Method  string `json:"m,omitempty"`
	// Level, when not nil, is a new log level (KindSessionChanged).
	Level *string `json:"l,omitempty"`
	// Owner, when set, is the session's new owner (KindSessionChanged).
	Owner string `json:"o,omitempty"`
	// Subs are subscriptions added (true) or removed (false) (KindSessionChanged).
	Subs map[string]bool `json:"sub,omitempty"`
	Data json.RawMessage `json:"d,omitempty"`
}

// decodeMessage reads one bus payload.
func decodeMessage(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("cluster: bus message: %w", err)
	}
	if m.Kind == "" {
		return nil, fmt.Errorf("cluster: bus message without a kind")
	}
	return &m, nil
}

// NodeInfo is one node's registry record.
type NodeInfo struct {
	Name     string `json:"name"`
	Addr     string `json:"addr,omitempty"`
	Version  string `json:"version,omitempty"`
	Sessions int    `json:"sessions"`
	// Started and Seen are unix milliseconds: start of the node, its last heartbeat.
	Started int64 `json:"started"`
	Seen    int64 `json:"seen"`
	// Instance is random per process: during `erlmcp upgrade` the old and the new process
	// share the node name, and the old one must not remove the new one's record.
	Instance string `json:"instance"`
}
