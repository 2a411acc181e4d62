package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/erlmcp/erlmcp-go/server"
	"github.com/erlmcp/erlmcp-go/server/cluster"
)

// TestPrintStatusCluster: `erlmcp status` shows the node, Redis with the reason it is down,
// and every node seen with its sessions; without cluster mode it shows no cluster lines.
func TestPrintStatusCluster(t *testing.T) {
	started := time.Now().Add(-time.Minute).UnixMilli()
	s := &server.StatusInfo{Version: "v1", Ready: true, Memory: map[string]uint64{"total": 1 << 20},
		Cluster: &server.ClusterStatus{Node: "b", Redis: "down", LastError: "heartbeat: dial unix /x: connect: refused",
			LastErrorAt: "2026-11-28T08:00:00Z", SessionsLocal: 4,
			Nodes: []cluster.NodeInfo{{Name: "a", Addr: "10.0.0.1:8080", Sessions: 7, Started: started}, {Name: "b", Addr: "10.0.0.2:8080", Sessions: 4, Started: started}}}}
	var out bytes.Buffer
	printStatus(&out, s)
	got := out.String()
	for _, want := range []string{
		"cluster node b  redis down (heartbeat: dial unix /x: connect: refused at 2026-11-28T08:00:00Z)",
		"sessions here 4",
		"nodes seen   2",
		"sessions 7",
		"(this node)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
	s.Cluster = nil
	out.Reset()
	printStatus(&out, s)
	if strings.Contains(out.String(), "cluster") {
		t.Fatalf("cluster lines without cluster mode:\n%s", out.String())
	}
}
