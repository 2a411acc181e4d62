package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// errTimeout reports a reply that did not come within Config.Timeout.
var errTimeout = errors.New("bench: reply timed out")

// conn is one client connection, driven by one goroutine that both writes its
// requests and reads their replies.
type conn struct {
	r   *runner
	idx int // global index: picks the source address
	nc  net.Conn
	rd  reader

	wbuf    []byte
	body    []byte // HTTP: request body scratch
	scratch []byte // HTTP: chunked response scratch
	hdr     []byte // HTTP: fixed header of calls
	session []byte // HTTP: Mcp-Session-Id
	version string // negotiated protocol version
	resp    httpResp
	rep     reply

	// In flight: ids are seq<<10 | slot.
	free     []int32
	sentAt   []int64 // intended send time per slot, ns since run start
	kinds    []uint8
	active   []bool
	fifo     []int32 // HTTP: slots in send order (replies come in order)
	fifoHead int
	seq      int64
	inflight int

	nextAt   int64 // open loop: next intended send
	interval int64
	rng      uint64
	lastDL   int64 // when the read deadline was last set
}

func newConn(r *runner, idx int) *conn {
	c := &conn{r: r, idx: idx, rng: uint64(idx)*0x9E3779B97F4A7C15 + 1}
	d := r.cfg.Depth
	c.free = make([]int32, 0, d)
	c.sentAt = make([]int64, d)
	c.kinds = make([]uint8, d)
	c.active = make([]bool, d)
	for i := d - 1; i >= 0; i-- {
		c.free = append(c.free, int32(i))
	}
	if r.cfg.Rate > 0 {
		perConn := r.cfg.Rate / float64(r.cfg.Conns)
		c.interval = int64(float64(time.Second) / perConn)
		// Spread first sends over one interval so connections do not beat in phase.
		c.nextAt = -1 // set when the load starts
	}
	return c
}

func (c *conn) rand() uint64 {
	c.rng ^= c.rng << 13
	c.rng ^= c.rng >> 7
	c.rng ^= c.rng << 17
	return c.rng
}

// dial connects and, in the session era, initializes.
func (c *conn) dial() error {
	if err := c.connect(); err != nil {
		return err
	}
	return c.handshake()
}

// connect opens the TCP connection only.
func (c *conn) connect() error {
	cfg := c.r.cfg
	d := net.Dialer{Timeout: cfg.Timeout}
	if n := len(cfg.sourceIPs); n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: cfg.sourceIPs[c.idx%n]}
	}
	nc, err := d.Dial("tcp", cfg.dialAddr)
	if err != nil {
		return &kindError{"connect", err}
	}
	c.nc = nc
	c.rd.reset(nc)
	c.wbuf = c.wbuf[:0]
	c.fifo, c.fifoHead = c.fifo[:0], 0
	c.lastDL = 0
	return nil
}

// handshake initializes a session-era connection; stateless ones only get their headers.
func (c *conn) handshake() error {
	cfg := c.r.cfg
	if cfg.Stateless {
		c.version = StatelessVersion
		if cfg.Transport == "http" {
			c.hdr = httpHeader("POST", cfg.path, cfg.host, c.version, nil)
		}
		return nil
	}
	t0 := c.r.now()
	if err := c.initialize(); err != nil {
		c.nc.Close()
		c.nc = nil
		return err
	}
	c.r.initHist.Record(c.r.now() - t0)
	return nil
}

func (c *conn) initialize() error {
	cfg := c.r.cfg
	_ = c.nc.SetDeadline(time.Now().Add(cfg.Timeout))
	defer c.nc.SetDeadline(time.Time{})
	if cfg.Transport == "tcp" {
		msg := append(initializeBody(cfg.ProtocolVersion), '\n')
		if _, err := c.nc.Write(msg); err != nil {
			return ioKind(err)
		}
		for {
			l, err := c.rd.line()
			if err != nil {
				return ioKind(err)
			}
			if err := scanReply(l, &c.rep); err != nil {
				return &kindError{"protocol", err}
			}
			if c.rep.isRequest {
				continue
			}
			if c.rep.isError {
				return &kindError{"rpc_" + strconv.FormatInt(c.rep.code, 10), fmt.Errorf("initialize refused: %s", snippet(l))}
			}
			c.version = findProtocolVersion(l)
			break
		}
		_, err := c.nc.Write(append(initializedBody[:len(initializedBody):len(initializedBody)], '\n'))
		return ioKind(err)
	}
	// HTTP: POST initialize, keep Mcp-Session-Id, POST notifications/initialized.
	hdr := httpHeader("POST", cfg.path, cfg.host, "", nil)
	if _, err := c.nc.Write(appendHTTP(nil, hdr, routing("initialize", ""), initializeBody(cfg.ProtocolVersion))); err != nil {
		return ioKind(err)
	}
	if err := c.rd.readHTTP(&c.resp, &c.scratch); err != nil {
		return ioKind(err)
	}
	if c.resp.status != 200 {
		return &kindError{"http_" + strconv.Itoa(c.resp.status), fmt.Errorf("initialize: HTTP %d: %s", c.resp.status, snippet(c.resp.body))}
	}
	if err := scanBody(c.resp.body, c.resp.sse, &c.rep); err != nil {
		return &kindError{"protocol", err}
	}
	if c.rep.isError {
		return &kindError{"rpc_" + strconv.FormatInt(c.rep.code, 10), fmt.Errorf("initialize refused: %s", snippet(c.resp.body))}
	}
	c.version = findProtocolVersion(c.resp.body)
	c.session = append(c.session[:0], c.resp.sessionID...)
	c.hdr = httpHeader("POST", cfg.path, cfg.host, c.version, c.session)
	if _, err := c.nc.Write(appendHTTP(nil, c.hdr, routing("notifications/initialized", ""), initializedBody)); err != nil {
		return ioKind(err)
	}
	if err := c.rd.readHTTP(&c.resp, &c.scratch); err != nil {
		return ioKind(err)
	}
	if c.resp.status >= 300 {
		return &kindError{"http_" + strconv.Itoa(c.resp.status), fmt.Errorf("notifications/initialized: HTTP %d", c.resp.status)}
	}
	return nil
}

// close ends the connection; an HTTP session is deleted first (best effort).
func (c *conn) close() {
	if c.nc == nil {
		return
	}
	cfg := c.r.cfg
	if cfg.Transport == "http" && len(c.session) > 0 && c.inflight == 0 {
		_ = c.nc.SetDeadline(time.Now().Add(time.Second))
		req := httpHeader("DELETE", cfg.path, cfg.host, c.version, c.session)
		req = append(req, "Content-Length: 0\r\n\r\n"...)
		if _, err := c.nc.Write(req); err == nil {
			_ = c.rd.readHTTP(&c.resp, &c.scratch)
		}
	}
	c.nc.Close()
	c.nc = nil
	c.session = c.session[:0]
}

// pick chooses the next request kind by the mix weights.
func (c *conn) pick() int {
	cfg := c.r.cfg
	if cfg.mixTotal == 1 || cfg.Mode != ModeMixed {
		for k, w := range cfg.mix {
			if w > 0 {
				return k
			}
		}
	}
	n := int(c.rand() % uint64(cfg.mixTotal))
	for k, w := range cfg.mix {
		if n < w {
			return k
		}
		n -= w
	}
	return kindCall
}

// send appends one request of kind k, intended at t, to the write buffer.
func (c *conn) send(k int, t int64) {
	slot := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.seq++
	id := c.seq<<10 | int64(slot)
	c.sentAt[slot] = t
	c.kinds[slot] = uint8(k)
	c.active[slot] = true
	c.inflight++
	tpl := &c.r.tpl[k]
	if c.r.cfg.Transport == "tcp" {
		c.wbuf = append(c.wbuf, tpl.pre...)
		c.wbuf = strconv.AppendInt(c.wbuf, id, 10)
		c.wbuf = append(c.wbuf, tpl.post...)
		c.wbuf = append(c.wbuf, '\n')
		return
	}
	c.body = append(c.body[:0], tpl.pre...)
	c.body = strconv.AppendInt(c.body, id, 10)
	c.body = append(c.body, tpl.post...)
	c.wbuf = appendHTTP(c.wbuf, c.hdr, tpl.http, c.body)
	c.fifo = append(c.fifo, slot)
}

// complete accounts the reply to slot at time now.
func (c *conn) complete(slot int32, now int64, rep *reply) {
	t, k := c.sentAt[slot], c.kinds[slot]
	c.release(slot)
	r := c.r
	r.all.Add(1)
	if rep.isError {
		r.fail("rpc_"+strconv.FormatInt(rep.code, 10), 1)
		return
	}
	if t >= r.warm0 {
		r.hist[k][c.idx%len(r.hist[k])].Record(now - t)
		r.ok.Add(1)
		if now < r.stopAt {
			r.okIn.Add(1)
		}
		r.tick(now)
	}
}

// drive runs requests until the run stops (nil) or the connection fails.
func (c *conn) drive() error {
	r := c.r
	cfg := r.cfg
	depth := cfg.Depth
	timeout := int64(cfg.Timeout)
	if c.interval > 0 && c.nextAt < 0 {
		// Spread first sends over one interval so connections do not beat in phase.
		c.nextAt = r.now() + int64(c.rand()%uint64(max(c.interval, 1)))
	}
	for {
		now := r.now()
		stopping := r.stopping(now)
		for !stopping && c.inflight < depth {
			t := now
			if c.interval > 0 {
				if now < c.nextAt {
					break
				}
				t = c.nextAt
				c.nextAt += c.interval
			}
			if !r.take() {
				stopping = true
				break
			}
			c.send(c.pick(), t)
		}
		if c.inflight == 0 {
			if stopping {
				return nil
			}
			// Open loop, nothing in flight: sleep until the next send.
			if err := c.flush(); err != nil {
				return err
			}
			time.Sleep(time.Duration(min(c.nextAt, r.stopAt) - now))
			continue
		}
		if len(c.wbuf) > 0 && !c.replyBuffered() {
			if err := c.flush(); err != nil {
				return err
			}
		}
		// Read deadline: a reply is late after timeout; the open loop also
		// wakes up to send on schedule.
		if c.interval > 0 && c.inflight < depth && !stopping {
			dl := min(c.nextAt, now+timeout)
			_ = c.nc.SetReadDeadline(r.wall(dl))
			c.lastDL = 0
		} else if c.lastDL == 0 || now-c.lastDL > timeout/4 {
			_ = c.nc.SetReadDeadline(r.wall(now + timeout))
			c.lastDL = now
		}
		if err := c.readOne(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if c.interval > 0 && r.now()-c.oldest() < timeout {
					continue // woken to send
				}
				return errTimeout
			}
			return err
		}
	}
}

// oldest returns the send time of the oldest request in flight.
func (c *conn) oldest() int64 {
	o := int64(1<<63 - 1)
	for s, a := range c.active {
		if a {
			o = min(o, c.sentAt[s])
		}
	}
	return o
}

func (c *conn) replyBuffered() bool {
	if c.r.cfg.Transport == "tcp" {
		return c.rd.hasLine()
	}
	return c.rd.buffered() > 0
}

func (c *conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.r.cfg.Timeout))
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		return ioKind(err)
	}
	return nil
}

// readOne reads one message and accounts it.
func (c *conn) readOne() error {
	if c.r.cfg.Transport == "tcp" {
		l, err := c.rd.line()
		if err != nil {
			return err
		}
		now := c.r.now()
		if err := scanReply(l, &c.rep); err != nil {
			return &kindError{"protocol", fmt.Errorf("%w: %q", err, snippet(l))}
		}
		if c.rep.isRequest {
			return nil // notification or server→client request: not ours
		}
		slot := int32(c.rep.id & (maxDepth - 1))
		if !c.rep.hasID || int(slot) >= len(c.sentAt) || !c.active[slot] {
			if c.rep.isError { // e.g. a parse error with id null
				return &kindError{"rpc_" + strconv.FormatInt(c.rep.code, 10), fmt.Errorf("error without our id: %s", snippet(l))}
			}
			return &kindError{"protocol", fmt.Errorf("reply with unknown id: %s", snippet(l))}
		}
		c.complete(slot, now, &c.rep)
		return nil
	}
	if err := c.rd.readHTTP(&c.resp, &c.scratch); err != nil {
		return err
	}
	now := c.r.now()
	if c.fifoHead >= len(c.fifo) {
		return &kindError{"protocol", errors.New("HTTP response without a request")}
	}
	slot := c.fifo[c.fifoHead]
	c.fifoHead++
	if c.fifoHead == len(c.fifo) {
		c.fifo, c.fifoHead = c.fifo[:0], 0
	}
	if c.resp.status != 200 {
		c.release(slot)
		c.r.fail("http_"+strconv.Itoa(c.resp.status), 1)
	} else if err := scanBody(c.resp.body, c.resp.sse, &c.rep); err != nil {
		c.release(slot)
		c.r.fail("protocol", 1)
	} else {
		c.complete(slot, now, &c.rep)
	}
	if c.resp.closeConn {
		return errServerClosed
	}
	return nil
}

// release frees an in-flight slot.
func (c *conn) release(slot int32) {
	c.active[slot] = false
	c.free = append(c.free, slot)
	c.inflight--
}

// resetInflight forgets requests in flight (the connection failed) and
// returns how many there were.
func (c *conn) resetInflight() int {
	n := c.inflight
	for s, a := range c.active {
		if a {
			c.release(int32(s))
		}
	}
	c.fifo, c.fifoHead = c.fifo[:0], 0
	return n
}

// kindError is an error with the kind it is counted under.
type kindError struct {
	kind string
	err  error
}

func (e *kindError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// ioKind classifies a socket error.
func ioKind(err error) error {
	if err == nil {
		return nil
	}
	var ke *kindError
	if errors.As(err, &ke) {
		return err
	}
	return &kindError{errKind(err), err}
}

// errKind names the kind an error is counted under.
func errKind(err error) string {
	var ke *kindError
	switch {
	case errors.As(err, &ke):
		return ke.kind
	case errors.Is(err, errTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, errServerClosed):
		return "closed"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE):
		return "connect"
	}
	return "io"
}
