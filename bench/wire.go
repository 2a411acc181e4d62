package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// Errors of the wire layer.
var (
	errLineTooLong  = errors.New("bench: reply line longer than the 16 MiB limit")
	errBadHTTP      = errors.New("bench: malformed HTTP response")
	errServerClosed = errors.New("bench: server asked to close the connection")
)

const maxLine = 16 << 20

// reader is a buffered reader that, unlike bufio.Reader, keeps partial data
// across read-deadline errors (the open-loop mode wakes itself with a
// deadline to send on schedule). Slices it returns are valid until the next
// call on it.
type reader struct {
	nc   net.Conn
	buf  []byte
	r, w int
}

func (rd *reader) reset(nc net.Conn) {
	rd.nc = nc
	rd.r, rd.w = 0, 0
	if rd.buf == nil {
		rd.buf = make([]byte, 16<<10)
	}
}

// fill reads more bytes, compacting or growing the buffer first when full.
func (rd *reader) fill() error {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	if rd.w == len(rd.buf) {
		if rd.r > 0 {
			copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.w -= rd.r
			rd.r = 0
		} else {
			nb := make([]byte, 2*len(rd.buf))
			copy(nb, rd.buf[:rd.w])
			rd.buf = nb
		}
	}
	n, err := rd.nc.Read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// buffered returns the number of unread bytes.
func (rd *reader) buffered() int { return rd.w - rd.r }

// hasLine reports whether a complete line is buffered.
func (rd *reader) hasLine() bool { return bytes.IndexByte(rd.buf[rd.r:rd.w], '\n') >= 0 }

// line returns the next line without its '\n'.
func (rd *reader) line() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(rd.buf[rd.r+scanned:rd.w], '\n'); i >= 0 {
			l := rd.buf[rd.r : rd.r+scanned+i]
			rd.r += scanned + i + 1
			return l, nil
		}
		scanned = rd.w - rd.r
		if scanned > maxLine {
			return nil, errLineTooLong
		}
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
}

// next returns the next n bytes.
func (rd *reader) next(n int) ([]byte, error) {
	for rd.w-rd.r < n {
		if n > maxLine {
			return nil, errLineTooLong
		}
		if rd.r > 0 && len(rd.buf)-rd.r < n {
			copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.w -= rd.r
			rd.r = 0
		}
		for len(rd.buf) < n {
			nb := make([]byte, 2*len(rd.buf))
			copy(nb, rd.buf[:rd.w])
			rd.buf = nb
		}
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
	b := rd.buf[rd.r : rd.r+n]
	rd.r += n
	return b, nil
}

// httpResp is one parsed HTTP response. body aliases the reader's buffer or
// the scratch buffer and is valid until the next readHTTP.
type httpResp struct {
	status    int
	sse       bool
	closeConn bool
	sessionID []byte // copied
	body      []byte
}

// readHTTP reads one HTTP/1.1 response. scratch collects chunked bodies.
func (rd *reader) readHTTP(resp *httpResp, scratch *[]byte) error {
	line, err := rd.line()
	if err != nil {
		return err
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return fmt.Errorf("%w: status line %q", errBadHTTP, snippet(line))
	}
	st, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return fmt.Errorf("%w: status line %q", errBadHTTP, snippet(line))
	}
	resp.status, resp.sse, resp.closeConn = st, false, line[7] == '0'
	resp.sessionID = resp.sessionID[:0]
	cl, chunked := -1, false
	for {
		h, err := rd.line()
		if err != nil {
			return err
		}
		h = bytes.TrimSuffix(h, []byte{'\r'})
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon < 0 {
			continue
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl, err = strconv.Atoi(string(val))
			if err != nil || cl < 0 {
				return fmt.Errorf("%w: Content-Length %q", errBadHTTP, snippet(val))
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Content-Type")):
			resp.sse = bytes.HasPrefix(bytes.ToLower(val), []byte("text/event-stream"))
		case bytes.EqualFold(name, []byte("Mcp-Session-Id")):
			resp.sessionID = append(resp.sessionID, val...)
		case bytes.EqualFold(name, []byte("Connection")):
			resp.closeConn = bytes.EqualFold(val, []byte("close"))
		}
	}
	resp.body = nil
	switch {
	case st == 204 || st == 304 || st < 200:
	case chunked:
		*scratch = (*scratch)[:0]
		for {
			sz, err := rd.line()
			if err != nil {
				return err
			}
			sz = bytes.TrimSuffix(sz, []byte{'\r'})
			if i := bytes.IndexByte(sz, ';'); i >= 0 {
				sz = sz[:i]
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: chunk size %q", errBadHTTP, snippet(sz))
			}
			if n == 0 {
				for { // trailers
					t, err := rd.line()
					if err != nil {
						return err
					}
					if len(bytes.TrimSuffix(t, []byte{'\r'})) == 0 {
						break
					}
				}
				break
			}
			data, err := rd.next(int(n))
			if err != nil {
				return err
			}
			*scratch = append(*scratch, data...)
			if _, err := rd.next(2); err != nil {
				return err
			}
		}
		resp.body = *scratch
	case cl >= 0:
		resp.body, err = rd.next(cl)
		if err != nil {
			return err
		}
	default: // delimited by close
		*scratch = (*scratch)[:0]
		for {
			*scratch = append(*scratch, rd.buf[rd.r:rd.w]...)
			rd.r = rd.w
			if err := rd.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return err
			}
		}
		resp.body = *scratch
		resp.closeConn = true
	}
	return nil
}

// scanBody finds the JSON-RPC response in an HTTP body: the body itself, or
// for text/event-stream the first "data:" payload that is a response.
func scanBody(body []byte, sse bool, r *reply) error {
	if !sse {
		return scanReply(body, r)
	}
	for len(body) > 0 {
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if !bytes.HasPrefix(l, []byte("data:")) {
			continue
		}
		if err := scanReply(bytes.TrimSpace(l[5:]), r); err == nil && r.hasID && !r.isRequest {
			return nil
		}
	}
	return fmt.Errorf("%w: no JSON-RPC response in event stream", errNotJSON)
}

// snippet shortens bad input for error messages.
func snippet(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// Request kinds, in the order of Config.Mix weights.
const (
	kindCall = iota
	kindPing
	kindList
	nKinds
)

var kindNames = [nKinds]string{"tools/call", "ping", "tools/list"}

// Protocol versions the generator speaks.
const (
	// StatelessVersion is the stateless era's protocol version.
	StatelessVersion = "2026-07-28"
	// SessionVersion is the version offered in initialize.
	SessionVersion = "2025-11-25"
)

// template is one request body split around its id.
type template struct {
	pre, post []byte
	// http holds the SEP-2243 routing headers (Mcp-Method, Mcp-Name) that
	// 2026-07-28 servers require to match the body.
	http []byte
}

// templates builds the request bodies of every kind for cfg.
func templates(cfg *Config) [nKinds]template {
	meta := ""
	if cfg.Stateless {
		meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + StatelessVersion +
			`","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"erlmcp-bench","version":"1.0.0"}}`
	}
	pre := []byte(`{"jsonrpc":"2.0","id":`)
	name := strconv.Quote(cfg.Tool)
	call := `,"method":"tools/call","params":{"name":` + name + `,"arguments":` + cfg.Args
	if meta != "" {
		call += "," + meta
	}
	call += "}}"
	ping := `,"method":"ping"`
	if meta != "" {
		ping += `,"params":{` + meta + "}"
	}
	ping += "}"
	list := `,"method":"tools/list","params":{` + meta + "}}"
	return [nKinds]template{
		kindCall: {pre, []byte(call), routing("tools/call", cfg.Tool)},
		kindPing: {pre, []byte(ping), routing("ping", "")},
		kindList: {pre, []byte(list), routing("tools/list", "")},
	}
}

// routing returns the Mcp-Method and Mcp-Name header lines of a request.
func routing(method, name string) []byte {
	h := "Mcp-Method: " + method + "\r\n"
	if name != "" {
		h += "Mcp-Name: " + name + "\r\n"
	}
	return []byte(h)
}

// initializeBody is the session-era initialize request (id 0).
func initializeBody(version string) []byte {
	return []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + version +
		`","capabilities":{},"clientInfo":{"name":"erlmcp-bench","version":"1.0.0"}}}`)
}

var initializedBody = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)

// findProtocolVersion returns the "protocolVersion" string in an initialize result.
func findProtocolVersion(body []byte) string {
	const key = `"protocolVersion":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// appendHTTP appends a POST of body to dst. hdr and extra hold header lines.
func appendHTTP(dst, hdr, extra, body []byte) []byte {
	dst = append(dst, hdr...)
	dst = append(dst, extra...)
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// httpHeader returns the fixed header block of requests to path on host.
func httpHeader(method, path, host, version string, sessionID []byte) []byte {
	h := method + " " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nUser-Agent: erlmcp-bench\r\n"
	if version != "" {
		h += "MCP-Protocol-Version: " + version + "\r\n"
	}
	if len(sessionID) > 0 {
		h += "Mcp-Session-Id: " + string(sessionID) + "\r\n"
	}
	return []byte(h)
}
