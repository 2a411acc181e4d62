package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// The tasks extension (io.modelcontextprotocol/tasks, SEP-2663 "tasks v2") on the
// 2026-07-28 wire: a tools/call of a task-supporting tool from a client that declares the
// extension in its request _meta answers at once with a CreateTaskResult; the work runs
// in the background, parks in input_required when it needs client input, and is followed
// with tasks/get, fed with tasks/update and stopped with tasks/cancel. tasks/result and
// tasks/list were removed in v2 and stay unknown (-32601).

// TasksExtension is the extension's capability key.
const TasksExtension = "io.modelcontextprotocol/tasks"

// Task statuses.
const (
	TaskWorking       = "working"
	TaskInputRequired = "input_required"
	TaskCompleted     = "completed"
	TaskFailed        = "failed"
	TaskCancelled     = "cancelled"
)

// Task timing defaults: how long a task stays readable, and the poll hint.
const (
	defaultTaskTTL  = 5 * time.Minute
	defaultTaskPoll = 200 * time.Millisecond
)

// Task is one background tools/call. Its function reads input with Input.
type Task struct {
	id      string
	store   *taskStore
	created time.Time
	ttl     time.Duration
	cancel  context.CancelFunc

	mu        sync.Mutex
	status    string
	updated   time.Time
	result    *CallToolResult
	err       *codec.Error
	requests  map[string]InputRequest    // outstanding input requests
	responses map[string]json.RawMessage // answers received for them
	wake      chan struct{}              // cap 1
}

// ID returns the task id.
func (t *Task) ID() string { return t.id }

// Input parks the task in input_required with reqs and waits until tasks/update has
// answered every key (or ctx ends). It returns the answers by key.
func (t *Task) Input(ctx context.Context, reqs map[string]InputRequest) (map[string]json.RawMessage, error) {
	t.mu.Lock()
	t.requests = make(map[string]InputRequest, len(reqs))
	for k, v := range reqs {
		t.requests[k] = v
	}
	t.responses = make(map[string]json.RawMessage, len(reqs))
	t.status, t.updated = TaskInputRequired, time.Now()
	t.mu.Unlock()
	t.changed()
	for {
		t.mu.Lock()
		if len(t.requests) == 0 {
			got := t.responses
			t.responses = nil
			t.status, t.updated = TaskWorking, time.Now()
			t.mu.Unlock()
			t.changed()
			return got, nil
		}
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.wake:
		}
	}
}

// changed tells the cluster, in cluster mode, that the task's status changed (its record
// is rewritten by the writer goroutine).
func (t *Task) changed() {
	if t.store != nil {
		if cn := t.store.srv.cluster; cn != nil {
			cn.c.SaveTask(t.id)
		}
	}
}

// TaskFunc runs a task's work. Report tool failures in the result (IsError: the task
// completes), protocol failures as a *codec.Error (the task fails).
type TaskFunc func(ctx context.Context, t *Task, args json.RawMessage) (*CallToolResult, error)

// TaskTool describes a task-supporting tool.
type TaskTool struct {
	Tool *Tool
	// Required refuses callers without the extension (-32021); otherwise they are served
	// synchronously by Sync (or Run without a Task when Sync is nil).
	Required bool
	// Prepare, when set, runs before a task is created, on the request: it may answer
	// with *InputRequired (an MRTR round) or an error; nil goes on to create the task.
	// Its returned value is handed to Run as args (nil keeps the call's arguments).
	Prepare func(ctx context.Context, r *Request, args json.RawMessage) (json.RawMessage, error)
	// Run is the task's work.
	Run TaskFunc
	// Sync serves callers that did not declare the extension (optional).
	Sync ToolHandler
}

// AddTaskTool registers a tool that runs as a task for clients that declare the tasks
// extension, and advertises the extension in server/discover.
func (s *Server) AddTaskTool(tt TaskTool) error {
	if tt.Tool == nil || tt.Run == nil {
		return fmt.Errorf("server: AddTaskTool: needs a Tool and a Run")
	}
	tc := *tt.Tool
	support := "optional"
	if tt.Required {
		support = "required"
	}
	tc.Execution = &ToolExecution{TaskSupport: support}
	st := s.tasks()
	h := func(ctx context.Context, r *Request, args json.RawMessage) (*CallToolResult, error) {
		if !r.tasksDeclared() {
			if tt.Required {
				return nil, missingTasksCapability(fmt.Sprintf("tool %q runs only as a task", tc.Name))
			}
			if tt.Sync != nil {
				return tt.Sync(ctx, r, args)
			}
			return tt.Run(ctx, &Task{wake: make(chan struct{}, 1)}, args)
		}
		if tt.Prepare != nil {
			a, err := tt.Prepare(ctx, r, args)
			if err != nil {
				return nil, err
			}
			if a != nil {
				args = a
			}
		}
		t := st.start(tt.Run, args)
		return nil, &taskCreated{t}
	}
	return s.AddTool(&tc, ToolOptions{}, h)
}

// taskCreated is returned (as an error) by a task tool's handler; finish encodes it as
// a CreateTaskResult.
type taskCreated struct{ t *Task }

func (e *taskCreated) Error() string { return "server: task created" }

func missingTasksCapability(why string) *codec.Error {
	return codec.NewError(codec.CodeMissingClientCapability, "%s: declare the %s extension in _meta clientCapabilities.extensions", why, TasksExtension).
		WithData(map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}})
}

// tasksDeclared reports whether the request's client declared the tasks extension.
func (r *Request) tasksDeclared() bool {
	caps := r.ClientCapabilities()
	if caps == nil || caps.Extensions == nil {
		return false
	}
	_, ok := caps.Extensions[TasksExtension]
	return ok
}

// taskStore holds the tasks of one server.
type taskStore struct {
	srv   *Server
	mu    sync.Mutex
	tasks map[string]*Task
	wg    sync.WaitGroup
}

// tasks returns the server's task store, making it on first use; the first one declares
// the tasks extension in server/discover (a 2026-07-28 extension: session-era initialize
// does not announce it).
func (s *Server) tasks() *taskStore {
	if st := s.taskStore.Load(); st != nil {
		return st
	}
	st := &taskStore{srv: s, tasks: make(map[string]*Task)}
	if !s.taskStore.CompareAndSwap(nil, st) {
		return s.taskStore.Load()
	}
	s.declareExtension(TasksExtension, map[string]any{}, false)
	return st
}

// start creates the task (readable by tasks/get before this returns) and runs fn.
func (st *taskStore) start(fn TaskFunc, args json.RawMessage) *Task {
	now := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	t := &Task{id: NewSessionID(), store: st, created: now, updated: now, ttl: defaultTaskTTL,
		cancel: cancel, status: TaskWorking, wake: make(chan struct{}, 1)}
	st.mu.Lock()
	for id, old := range st.tasks { // expire lazily: no timer per task
		old.mu.Lock()
		expired := now.Sub(old.updated) > old.ttl && terminal(old.status)
		old.mu.Unlock()
		if expired {
			delete(st.tasks, id)
		}
	}
	st.tasks[t.id] = t
	st.mu.Unlock()
	if cn := st.srv.cluster; cn != nil {
		cn.taskCreated(t) // before it runs: later changes are written after this
	}
	args = append(json.RawMessage(nil), args...)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer cancel()
		res, err := st.run(ctx, fn, t, args)
		defer t.changed() // after the unlock below
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.status == TaskCancelled {
			return
		}
		t.updated = time.Now()
		t.requests = nil
		switch {
		case ctx.Err() != nil:
			t.status = TaskCancelled
		case err != nil:
			t.status, t.err = TaskFailed, asCodecError(err)
		default:
			if res == nil {
				res = &CallToolResult{}
			}
			if res.Content == nil {
				res.Content = []Content{}
			}
			t.status, t.result = TaskCompleted, res
		}
	}()
	return t
}

// run runs a task's function; a panic fails the task with an internal error (logged
// with its stack) instead of ending the process.
func (st *taskStore) run(ctx context.Context, fn TaskFunc, t *Task, args json.RawMessage) (res *CallToolResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, st.srv.panicked(v, "the task's handler", "task", t.id)
		}
	}()
	return fn(ctx, t, args)
}

func terminal(status string) bool {
	return status == TaskCompleted || status == TaskFailed || status == TaskCancelled
}

func (st *taskStore) get(id string) *Task {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.tasks[id]
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// createTaskResult is the wire form of a created task (flat, SEP-2663). content keeps
// it a valid CallToolResult for clients that do not know tasks.
type createTaskResult struct {
	ResultType     string    `json:"resultType"`
	TaskID         string    `json:"taskId"`
	Status         string    `json:"status"`
	CreatedAt      string    `json:"createdAt"`
	LastUpdatedAt  string    `json:"lastUpdatedAt"`
	TTLMs          int64     `json:"ttlMs"`
	PollIntervalMs int64     `json:"pollIntervalMs"`
	Content        []Content `json:"content"`
}

func (t *Task) created_() *createTaskResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &createTaskResult{ResultType: "task", TaskID: t.id, Status: t.status, CreatedAt: isoTime(t.created),
		LastUpdatedAt: isoTime(t.updated), TTLMs: t.ttl.Milliseconds(), PollIntervalMs: defaultTaskPoll.Milliseconds(), Content: []Content{}}
}

// detailedTask is the result of tasks/get.
type detailedTask struct {
	TaskID         string                  `json:"taskId"`
	Status         string                  `json:"status"`
	CreatedAt      string                  `json:"createdAt"`
	LastUpdatedAt  string                  `json:"lastUpdatedAt"`
	TTLMs          int64                   `json:"ttlMs"`
	PollIntervalMs int64                   `json:"pollIntervalMs,omitempty"`
	Result         *CallToolResult         `json:"result,omitempty"`
	Error          *taskError              `json:"error,omitempty"`
	InputRequests  map[string]InputRequest `json:"inputRequests,omitempty"`
}

type taskError struct {
	Code    codec.Code `json:"code"`
	Message string     `json:"message"`
	Data    any        `json:"data,omitempty"`
}

func (t *Task) detail() *detailedTask {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := &detailedTask{TaskID: t.id, Status: t.status, CreatedAt: isoTime(t.created), LastUpdatedAt: isoTime(t.updated), TTLMs: t.ttl.Milliseconds()}
	if !terminal(t.status) {
		d.PollIntervalMs = defaultTaskPoll.Milliseconds()
	}
	switch t.status {
	case TaskCompleted:
		d.Result = t.result
	case TaskFailed:
		d.Error = &taskError{Code: t.err.Code, Message: t.err.Message, Data: t.err.Data}
	case TaskInputRequired:
		d.InputRequests = make(map[string]InputRequest, len(t.requests))
		for k, v := range t.requests {
			d.InputRequests[k] = v
		}
	}
	return d
}

// ackResult is the empty acknowledgement of tasks/update and tasks/cancel.
type ackResult struct {
	ResultType string `json:"resultType"`
}

type taskParams struct {
	TaskID         string                     `json:"taskId"`
	InputResponses map[string]json.RawMessage `json:"inputResponses"`

	// remote is the record of a task another node runs (cluster mode).
	remote *cluster.TaskRecord
}

// taskFor decodes params and finds the task, after the capability check.
func (s *Server) taskFor(r *Request) (*Task, *taskParams, error) {
	if !r.tasksDeclared() {
		return nil, nil, missingTasksCapability(r.Method + " belongs to the tasks extension")
	}
	var p taskParams
	if err := decodeParams(r, &p); err != nil {
		return nil, nil, err
	}
	t := s.tasks().get(p.TaskID)
	if t == nil {
		if cn := s.cluster; cn != nil {
			if p.remote = cn.remoteTask(p.TaskID); p.remote != nil {
				return nil, &p, nil
			}
		}
		return nil, nil, codec.NewError(codec.CodeInvalidParams, "unknown task %q", snippet(p.TaskID)).WithData(map[string]any{"taskId": p.TaskID})
	}
	return t, &p, nil
}

func (s *Server) tasksGet(ctx context.Context, r *Request) (any, error) {
	t, p, err := s.taskFor(r)
	if err != nil {
		return nil, err
	}
	if p.remote != nil {
		return s.cluster.remoteDetail(p.remote)
	}
	return t.detail(), nil
}

func (s *Server) tasksUpdate(ctx context.Context, r *Request) (any, error) {
	t, p, err := s.taskFor(r)
	if err != nil {
		return nil, err
	}
	if p.remote != nil {
		return s.cluster.remoteUpdate(p.remote, p.InputResponses)
	}
	t.update(p.InputResponses)
	return &ackResult{ResultType: "complete"}, nil
}

// update takes answers to the task's input requests (tasks/update); keys it did not ask
// for are ignored.
func (t *Task) update(responses map[string]json.RawMessage) {
	t.mu.Lock()
	for k, v := range responses {
		if _, asked := t.requests[k]; asked {
			t.responses[k] = append(json.RawMessage(nil), v...)
			delete(t.requests, k)
		}
	}
	t.updated = time.Now()
	t.mu.Unlock()
	t.changed() // the answered keys leave inputRequests in the cluster's record too
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (s *Server) tasksCancel(ctx context.Context, r *Request) (any, error) {
	t, p, err := s.taskFor(r)
	if err != nil {
		return nil, err
	}
	if p.remote != nil {
		return s.cluster.remoteCancel(p.remote)
	}
	t.cancelNow()
	return &ackResult{ResultType: "complete"}, nil
}

// cancelNow cancels the task (tasks/cancel); an ended task stays as it ended.
func (t *Task) cancelNow() {
	t.mu.Lock()
	if !terminal(t.status) {
		t.status, t.updated, t.requests = TaskCancelled, time.Now(), nil
	}
	t.mu.Unlock()
	if t.cancel != nil {
		t.cancel()
	}
	t.changed()
}
