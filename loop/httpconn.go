package loop

import "github.com/cloudwego/netpoll"

// httpConn is the connection handed to Config.HTTP when hibernation is on. fasthttp
// reads it through netpoll's net.Conn Read, which frees the nodes it has read but keeps
// the tail node: the BufferSize (16 KiB in hibernation mode) buffer netpoll made at accept
// stayed with every HTTP connection for life, most of what an idle keep-alive connection
// costs. Each Read that drains the input therefore also calls netpoll's Reader.Release,
// which drops the drained tail node (resetTail) as the line path does after every wakeup;
// the next bytes get a buffer from netpoll's pool.
//
// Read also stamps the connection's activity, so the reaper can count an HTTP connection
// quiet for HibernateAfter as hibernated (it holds no read buffer by then) and return the
// memory such a wave freed, as it does for line connections.
type httpConn struct {
	netpoll.Connection
	c *Conn
}

// Read reads like netpoll's Read, then releases the input buffer once it is drained.
func (hc *httpConn) Read(p []byte) (int, error) {
	n, err := hc.Connection.Read(p)
	if err == nil {
		if r := hc.Connection.Reader(); r.Len() == 0 {
			_ = r.Release()
		}
		c := hc.c
		c.lastActive.Store(c.srv.clock.Load())
		if c.state.Load()&stateHibernated != 0 && c.state.And(^stateHibernated)&stateHibernated != 0 {
			c.srv.hibernated.Add(^uint64(0)) // awake again
		}
	}
	return n, err
}

// hibernateHTTP marks an HTTP connection quiet for HibernateAfter as hibernated (its
// read buffer went when its last read drained it) and reports whether it was awake.
func (s *Server) hibernateHTTP(c *Conn) bool {
	if c.state.Or(stateHibernated)&stateHibernated != 0 {
		return false
	}
	s.hibernated.Add(1)
	return true
}
