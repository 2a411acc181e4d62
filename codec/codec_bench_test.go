package codec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bytedance/sonic/decoder"
)

// Minimal MCP shapes for the benchmarks (server/ owns the real ones).
type (
	benchContent struct {
		Type string `json:"type"`
		Text string `json:"text,omitempty"`
	}
	benchCallToolResult struct {
		Content           []benchContent `json:"content"`
		StructuredContent map[string]any `json:"structuredContent,omitempty"`
		IsError           bool           `json:"isError,omitempty"`
	}
	benchTool struct {
		Name        string          `json:"name"`
		Title       string          `json:"title,omitempty"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	benchListToolsResult struct {
		Tools      []benchTool `json:"tools"`
		NextCursor string      `json:"nextCursor,omitempty"`
	}
	benchInitializeResult struct {
		ProtocolVersion string                    `json:"protocolVersion"`
		Capabilities    map[string]map[string]any `json:"capabilities"`
		ServerInfo      struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"serverInfo"`
		Instructions string `json:"instructions,omitempty"`
	}
	benchProgress struct {
		ProgressToken string  `json:"progressToken"`
		Progress      float64 `json:"progress"`
		Total         float64 `json:"total,omitempty"`
		Message       string  `json:"message,omitempty"`
	}
	benchResourceContents struct {
		URI      string `json:"uri"`
		MimeType string `json:"mimeType,omitempty"`
		Text     string `json:"text"`
	}
	benchReadResourceResult struct {
		Contents []benchResourceContents `json:"contents"`
	}
)

// stdEnvelope is how an encoding/json implementation would read a frame.
type stdEnvelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	} `json:"error,omitempty"`
}

// stdOut is how an encoding/json implementation would write one.
type stdOut struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  any             `json:"params,omitempty"`
	Result  any             `json:"result,omitempty"`
}

// benchCase is one wire message and the message that answers or
// re-encodes it: decode(frame) then encode(out) is one operation.
type benchCase struct {
	name   string
	frame  []byte
	method string // non-empty: encode out as a notification with this method
	out    any
}

var benchText4K = strings.Repeat("The quick brown fox jumps over the lazy dog; \"quoted\"\n ", 4096/50+1)[:4096]

func benchCases() []benchCase {
	schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","description":"City name"},"units":{"type":"string","enum":["metric","imperial"]}},"required":["city"]}`)
	tools := benchListToolsResult{Tools: []benchTool{
		{Name: "get_weather", Title: "Weather", Description: "Current weather for a city", InputSchema: schema},
		{Name: "search_docs", Description: "Full-text search in the documentation", InputSchema: schema},
		{Name: "run_query", Description: "Run a read-only SQL query", InputSchema: schema},
		{Name: "echo", Description: "Echo the input", InputSchema: json.RawMessage(`{"type":"object"}`)},
	}}
	init := benchInitializeResult{ProtocolVersion: "2025-11-25", Capabilities: map[string]map[string]any{
		"tools": {"listChanged": true}, "resources": {"subscribe": true, "listChanged": true}, "prompts": {}, "logging": {},
	}, Instructions: "Use get_weather for weather questions."}
	init.ServerInfo.Name, init.ServerInfo.Version = "erlmcp", "1.0.0"
	read := benchReadResourceResult{Contents: []benchResourceContents{{URI: "file:///docs/readme.md", MimeType: "text/markdown", Text: benchText4K}}}
	frame := func(v any) []byte {
		b, err := Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	return []benchCase{
		{
			name:  "initialize",
			frame: []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{}},"clientInfo":{"name":"claude-ai","title":"Claude","version":"0.1.0"}}}`),
			out:   &init,
		},
		{
			name:  "toolsCall",
			frame: []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris","units":"metric"},"_meta":{"progressToken":"p-42"}}}`),
			out:   &benchCallToolResult{Content: []benchContent{{Type: "text", Text: "Paris: 18°C, light rain"}}},
		},
		{
			name:  "toolsListResult",
			frame: frame(map[string]any{"jsonrpc": "2.0", "id": 1, "result": tools}),
			out:   &tools,
		},
		{
			name:   "progress",
			frame:  []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p-42","progress":50,"total":100,"message":"half way"}}`),
			method: "notifications/progress",
			out:    &benchProgress{ProgressToken: "p-42", Progress: 50, Total: 100, Message: "half way"},
		},
		{
			name:  "resourcesRead4K",
			frame: frame(map[string]any{"jsonrpc": "2.0", "id": "r-7", "result": read}),
			out:   &read,
		},
	}
}

func runSonic(b *testing.B, cs []benchCase) {
	var d Decoder
	msgs := make([]Message, 0, 4)
	buf := make([]byte, 0, 8192)
	for b.Loop() {
		for i := range cs {
			c := &cs[i]
			var err error
			msgs, _, err = d.Decode(c.frame, msgs)
			if err != nil {
				b.Fatal(err)
			}
			if c.method != "" {
				buf, err = AppendNotification(buf[:0], c.method, c.out)
			} else {
				buf, err = AppendResult(buf[:0], msgs[0].ID, c.out)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func runStd(b *testing.B, cs []benchCase) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for b.Loop() {
		for i := range cs {
			c := &cs[i]
			var env stdEnvelope
			if err := json.Unmarshal(c.frame, &env); err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			out := stdOut{JSONRPC: "2.0", ID: env.ID}
			if c.method != "" {
				out.Method, out.Params = c.method, c.out
			} else {
				out.Result = c.out
			}
			if err := enc.Encode(&out); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCodec decodes each MCP message and encodes its answer (or, for
// the notification, re-encodes it), with codec and with encoding/json.
//
//	go test -run=^$ -bench=BenchmarkCodec -count=10 ./codec/ | benchstat -col /impl -
func BenchmarkCodec(b *testing.B) {
	cs := benchCases()
	impls := []struct {
		name string
		run  func(*testing.B, []benchCase)
	}{{"sonic", runSonic}, {"std", runStd}}
	for _, impl := range impls {
		for i := range cs {
			b.Run("impl="+impl.name+"/msg="+cs[i].name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(cs[i].frame)))
				impl.run(b, cs[i:i+1])
			})
		}
		b.Run("impl="+impl.name+"/msg=mix", func(b *testing.B) {
			n := 0
			for _, c := range cs {
				n += len(c.frame)
			}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			impl.run(b, cs)
		})
	}
}

// sonicEnvelope is the alternative envelope decode the brief suggested:
// sonic into no-copy raw fields. It cannot tell duplicates, and still needs
// validate for UTF-8 and depth; BenchmarkEnvelope shows it is slower than
// reading the validated envelope in place, which is why Decode does that.
type sonicEnvelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// BenchmarkEnvelope compares envelope decoding alone on a tools/call.
func BenchmarkEnvelope(b *testing.B) {
	frame := benchCases()[1].frame
	b.Run("impl=codec", func(b *testing.B) {
		var d Decoder
		msgs := make([]Message, 0, 1)
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			msgs, _, _ = d.Decode(frame, msgs)
		}
	})
	b.Run("impl=sonicStruct", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if validate(frame, DefaultMaxDepth) != nil {
				b.Fatal("invalid")
			}
			var env sonicEnvelope
			dec := decoder.NewDecoder(b2s(frame))
			if err := dec.Decode(&env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=std", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			var env stdEnvelope
			if err := json.Unmarshal(frame, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
