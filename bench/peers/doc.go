// Package peers holds the servers erlmcp is compared with (bench/peers/run.sh):
// each serves the same fixture tool, echo {text}, over Streamable HTTP, or is
// a bare ceiling (a canned reply, a line echo). It is its own module so that
// peers never enter erlmcp's dependency graph.
package peers
