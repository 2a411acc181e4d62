package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/erlmcp/erlmcp-go/server"
)

// cmdConfigDefaults prints a complete config file: every key of server.DefaultSettings()
// with its value (after -set overrides, noting the built-in default where it differs) and,
// with -src, the doc comment of its Go field. deploy/release.sh writes etc/erlmcp.yaml with
// it, so the shipped file cannot drift from the code.
func cmdConfigDefaults(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("erlmcp config defaults", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "directory of the server package's Go source, for the keys' doc comments")
	var sets setFlags
	fs.Var(&sets, "set", "override one key in the output, key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	st := server.DefaultSettings()
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(stderr, "erlmcp: -set %q: want key=value\n", kv)
			return 2
		}
		if err := st.Set(k, v); err != nil {
			fmt.Fprintf(stderr, "erlmcp: %v\n", err)
			return 1
		}
	}
	docs := map[string]string{}
	if *src != "" {
		var err error
		if docs, err = fieldDocs(*src); err != nil {
			fmt.Fprintf(stderr, "erlmcp: %v\n", err)
			return 1
		}
	}
	def := server.DefaultSettings()
	root := structNode(reflect.ValueOf(st), reflect.ValueOf(def), docs)
	root.HeadComment = "erlmcp-go configuration: every key with its value; keys left out take the built-in default.\n" +
		"Check a file with: erlmcp config check FILE. Environment overrides: ERLMCP_PROFILE,\n" +
		"ERLMCP_LOG_LEVEL, ERLMCP_HIBERNATION_ENABLED, ERLMCP_METRICS_ENABLED, ERLMCP_METRICS_PPROF,\n" +
		"ERLMCP_TRACING_ENABLED, ERLMCP_OTEL_ENABLED, OTEL_EXPORTER_OTLP_ENDPOINT, ERLMCP_CLUSTER_ENABLED, ERLMCP_NODE (default of\n" +
		"cluster.node). Live changes: erlmcp reload (log level,\n" +
		"disabled tools, TLS certificates); anything else: erlmcp upgrade (new process, same sockets)."
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		fmt.Fprintf(stderr, "erlmcp: %v\n", err)
		return 1
	}
	return 0
}

// structNode builds the mapping node of struct v, with def its built-in default.
func structNode(v, def reflect.Value, docs map[string]string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: name}
		k.HeadComment = docs[t.Name()+"."+f.Name]
		fv, dv := v.Field(i), def.Field(i)
		var val *yaml.Node
		if fv.Kind() == reflect.Struct {
			val = structNode(fv, dv, docs)
		} else {
			val = &yaml.Node{}
			if err := val.Encode(fv.Interface()); err != nil {
				val = &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(fv.Interface())}
			}
			if val.Kind == yaml.SequenceNode || val.Kind == yaml.MappingNode {
				val.Style = yaml.FlowStyle
			}
			if !reflect.DeepEqual(fv.Interface(), dv.Interface()) {
				dn := &yaml.Node{}
				if dn.Encode(dv.Interface()) == nil {
					dn.Style = yaml.FlowStyle
					b, _ := yaml.Marshal(dn)
					val.LineComment = "default: " + strings.TrimSpace(string(b))
				}
			}
		}
		n.Content = append(n.Content, k, val)
	}
	return n
}

// fieldDocs reads the doc comments of struct fields in the Go files of dir, keyed
// "Type.Field".
func fieldDocs(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	docs := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("config defaults: %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, fl := range st.Fields.List {
				text := ""
				if fl.Doc != nil {
					text = strings.TrimSpace(fl.Doc.Text())
				} else if fl.Comment != nil {
					text = strings.TrimSpace(fl.Comment.Text())
				}
				for _, nm := range fl.Names {
					if text != "" {
						docs[ts.Name.Name+"."+nm.Name] = text
					}
				}
			}
			return true
		})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("config defaults: no struct field comments under %s", dir)
	}
	return docs, nil
}
