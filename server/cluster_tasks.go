package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// Tasks in cluster mode: a task runs on the node whose tools/call created it, which keeps
// its record in Redis current (cluster.TaskRecord: the tasks/get answer and the node).
// tasks/get on another node reads the record; tasks/update and tasks/cancel there are sent
// to the running node's channel and acknowledged at once, as locally — the record shows
// their effect as soon as that node has written it.

// taskRecord is cluster.Config.Tasks: the record of a task running here.
func (cn *clusterNode) taskRecord(id string) (*cluster.TaskRecord, bool) {
	t := cn.srv.tasks().get(id)
	if t == nil {
		return nil, false
	}
	b, err := codec.Marshal(t.detail())
	if err != nil {
		return nil, false
	}
	return &cluster.TaskRecord{ID: id, Node: cn.name, Detail: b, TTL: t.ttl}, true
}

// taskCreated writes a new task's record before its id is handed out, bounded by
// cluster.redis_timeout: 2026 requests reach any node, the very next tasks/get included.
// When Redis does not answer the write is queued and the task is served here meanwhile.
func (cn *clusterNode) taskCreated(t *Task) {
	rec, ok := cn.taskRecord(t.id)
	if !ok {
		return
	}
	if cn.c.SaveTaskNow(context.Background(), rec) != nil {
		cn.c.SaveTask(t.id)
	}
}

// remoteTask reads the record of a task another node runs, or nil.
func (cn *clusterNode) remoteTask(id string) *cluster.TaskRecord {
	if id == "" || len(id) > maxSessionIDLen {
		return nil
	}
	rec, err := cn.c.GetTask(context.Background(), id)
	if err != nil {
		return nil
	}
	return rec
}

// nodeGone reports whether the node running a remote task has left the cluster (only
// judged while Redis is up: during an outage the registry is stale).
func (cn *clusterNode) nodeGone(rec *cluster.TaskRecord) bool {
	return rec.Node != cn.name && cn.c.Up() && !cn.c.NodeAliveNow(context.Background(), rec.Node)
}

// remoteDetail is tasks/get of a task another node runs: its record, or — when that node
// is gone and the task had not ended — a failed task saying so.
func (cn *clusterNode) remoteDetail(rec *cluster.TaskRecord) (any, error) {
	if !cn.nodeGone(rec) {
		return json.RawMessage(rec.Detail), nil
	}
	var d map[string]any
	if err := codec.Unmarshal(rec.Detail, &d); err != nil {
		return nil, codec.NewError(codec.CodeInternalError, "task %q: unreadable record: %v", snippet(rec.ID), err)
	}
	if st, _ := d["status"].(string); terminal(st) {
		return d, nil
	}
	d["status"] = TaskFailed
	delete(d, "inputRequests")
	delete(d, "pollIntervalMs")
	d["error"] = map[string]any{"code": codec.CodeInternalError,
		"message": "node " + rec.Node + " running the task left the cluster before it finished"}
	return d, nil
}

// remoteUpdate sends tasks/update's answers to the node running the task.
func (cn *clusterNode) remoteUpdate(rec *cluster.TaskRecord, responses map[string]json.RawMessage) (any, error) {
	if cn.nodeGone(rec) {
		return nil, cn.goneError(rec)
	}
	b, err := codec.Marshal(responses)
	if err != nil {
		return nil, codec.NewError(codec.CodeInvalidParams, "tasks/update: inputResponses: %v", err)
	}
	cn.c.SendTo(rec.Node, cluster.Message{Kind: cluster.KindTaskUpdate, Task: rec.ID, Data: b})
	cn.awaitTaskUpdate(rec.ID, responses)
	return &ackResult{ResultType: "complete"}, nil
}

// awaitTaskUpdate waits, at most 4 Redis timeouts, until the running node has applied a
// tasks/update sent to it and written the task's record (the answered keys are gone from
// inputRequests, or the task left input_required), so that the client's next tasks/get —
// on any node — sees its answers taken: read-your-writes across nodes. Past the bound the
// update still applies; the ack goes out as locally.
func (cn *clusterNode) awaitTaskUpdate(id string, responses map[string]json.RawMessage) {
	deadline := time.Now().Add(4 * cn.c.RedisTimeout())
	for time.Now().Before(deadline) {
		rec, err := cn.c.GetTask(context.Background(), id)
		if err != nil {
			return // gone, or Redis down: nothing to wait for
		}
		var d struct {
			Status        string                     `json:"status"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
		}
		if codec.Unmarshal(rec.Detail, &d) != nil || d.Status != TaskInputRequired {
			return
		}
		pending := false
		for k := range responses {
			if _, ok := d.InputRequests[k]; ok {
				pending = true
				break
			}
		}
		if !pending {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// remoteCancel sends tasks/cancel to the node running the task.
func (cn *clusterNode) remoteCancel(rec *cluster.TaskRecord) (any, error) {
	if cn.nodeGone(rec) {
		return nil, cn.goneError(rec)
	}
	cn.c.SendTo(rec.Node, cluster.Message{Kind: cluster.KindTaskCancel, Task: rec.ID})
	return &ackResult{ResultType: "complete"}, nil
}

func (cn *clusterNode) goneError(rec *cluster.TaskRecord) error {
	return codec.NewError(codec.CodeInvalidParams, "task %q ran on node %s, which left the cluster", snippet(rec.ID), rec.Node).
		WithData(map[string]any{"taskId": rec.ID, "node": rec.Node})
}

// applyTaskUpdate is a tasks/update another node received for a task running here.
func (cn *clusterNode) applyTaskUpdate(m *cluster.Message) {
	t := cn.srv.tasks().get(m.Task)
	if t == nil {
		return
	}
	var responses map[string]json.RawMessage
	if err := codec.Unmarshal(m.Data, &responses); err != nil {
		cn.srv.log.Warn("cluster: undecodable tasks/update from another node", "task", m.Task, "from", m.From, "err", err)
		return
	}
	t.update(responses)
}
