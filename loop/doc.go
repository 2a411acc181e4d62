// Package loop moves bytes between sockets and newline-delimited frames on
// cloudwego/netpoll: listeners, zero-copy framing, batched replies, idle
// handling (timeouts, hibernation) and protocol sniffing (lines vs HTTP on the
// same port). It knows nothing about JSON-RPC or MCP: a Handler receives
// frames and replies with bytes.
//
// A connection costs no goroutine while idle: netpoll runs Handler.Frame on a
// pooled goroutine when bytes arrive, and one reaper goroutine per Server
// enforces timeouts for all connections.
//
//	s, err := loop.Listen(loop.Config{Addr: "127.0.0.1:8080", Handler: h})
//	if err != nil { ... }
//	go s.Serve()
//	...
//	_ = s.Shutdown(ctx) // waits for held work, then closes connections
//
// with
//
//	func (h *handler) Frame(c *loop.Conn, frame []byte) {
//		if fast(frame) {
//			c.Reply(answer(frame)) // written with the other replies of this wakeup
//			return
//		}
//		req := bytes.Clone(frame) // frame is only valid during Frame
//		c.Hold()
//		if err := workers.Submit(func() { defer c.Release(); c.Send(slow(req)) }); err != nil {
//			c.Release()
//			c.Reply(overloaded)
//		}
//	}
//
// Memory admission: with Config.Admit set (e.g. a memory guard), a line
// connection is refused at open and an unfinished line stops being buffered
// past AdmitAbove (64 KiB) while Admit says no; the Handler hears of it through
// the optional OverloadHandler (admit.go). Without it, a connection costs up to
// MaxFrameBytes of buffered partial line.
//
// netpoll is configured once per process (Config.Pollers, Config.BufferSize):
// the first Listen wins.
package loop
