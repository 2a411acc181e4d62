package server

import (
	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/erlmcp/erlmcp-go/loop"
)

// LineHandler returns the loop.Handler that serves newline-delimited JSON-RPC: one session
// per connection (TCP, TLS, stdio), every frame handed to HandleFrame.
func (s *Server) LineHandler() loop.Handler { return lineHandler{s} }

type lineHandler struct{ s *Server }

// Open starts the connection's session, counted against the session caps under the
// peer's address. Over a cap the client gets one error line (-32004 or -32003, naming the
// cap) and the connection is closed, before any session exists for it.
func (h lineHandler) Open(c *loop.Conn) {
	ss, err := h.s.OpenSession(c.Transport(), "", PrincipalKey(nil, addrIP(c.RemoteAddr())), c)
	if err != nil {
		_ = c.Send(codec.AppendError(nil, codec.NullID, asCodecError(err))) // Reply is for Frame only
		_ = c.Close()
		return // no session: Frame and Close ignore the connection
	}
	c.SetValue(ss)
}

// Frame serves one line.
func (h lineHandler) Frame(c *loop.Conn, frame []byte) {
	ss, _ := c.Value().(*Session)
	if ss == nil {
		return
	}
	h.s.HandleFrame(ss, frame, c)
}

// Oversize answers a line longer than the limit; loop discards the rest of it. The reply
// carries the request's id when it stands within the limit (a top-level member found by
// codec.PeekID's bounded scan), so the client's pending call fails at once; else null.
func (h lineHandler) Oversize(c *loop.Conn, limit int, head []byte) {
	e := codec.NewError(codec.CodeMessageTooLarge,
		"message exceeds message_size.max_request_size (%d bytes); the rest of the line is discarded", limit).
		WithData(map[string]any{"limit": limit})
	h.s.replyError(c, codec.PeekID(head), e, c.Transport())
}

// Close ends the session.
func (h lineHandler) Close(c *loop.Conn, err error) {
	if ss, _ := c.Value().(*Session); ss != nil {
		ss.Close()
	}
}
