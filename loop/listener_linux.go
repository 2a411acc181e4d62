package loop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listener is our netpoll.Listener. We do not use netpoll.ConvertListener:
// its Close calls close(2) on the same descriptor twice (once by number, once
// through the *os.File that owns it), which can close an unrelated descriptor
// opened in between. It also closes connections accepted during Shutdown at
// once, because netpoll's own Shutdown would close idle connections before
// held work finished.
type listener struct {
	s     *Server
	ln    net.Listener // the original listener
	file  *os.File     // dup of ln's socket, owns fd
	fd    int          // non-blocking descriptor polled by netpoll
	addr  net.Addr
	close sync.Once
}

func newListener(s *Server, ln net.Listener) (*listener, error) {
	fl, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("loop: listener %T has no File method (need *net.TCPListener or *net.UnixListener)", ln)
	}
	f, err := fl.File()
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		f.Close()
		return nil, err
	}
	return &listener{s: s, ln: ln, file: f, fd: fd, addr: ln.Addr()}, nil
}

// Accept implements netpoll.Listener. It returns (nil, nil) when no
// connection is pending (netpoll ignores it).
func (l *listener) Accept() (net.Conn, error) {
	fd, sa, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return nil, nil
		}
		var errno unix.Errno
		if errors.As(err, &errno) {
			return nil, syscall.Errno(errno) // netpoll recognises EMFILE/ENFILE and retries
		}
		return nil, err
	}
	if l.s.shutdown.Load() {
		unix.Close(fd)
		return nil, nil
	}
	if _, isTCP := l.addr.(*net.TCPAddr); isTCP {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		// netpoll's WithIdleTimeout skips keepalive for connections it did not
		// accept itself (empty network), so set it here.
		if ka := int(l.s.cfg.KeepAlive / time.Second); ka > 0 {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, ka)
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, ka)
		}
	}
	return &acceptedFD{fd: fd, laddr: l.addr, raddr: sockaddrToAddr(sa)}, nil
}

// Close implements netpoll.Listener; it is idempotent.
func (l *listener) Close() error {
	var err error
	l.close.Do(func() {
		err = l.file.Close()
		if e := l.ln.Close(); err == nil {
			err = e
		}
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.addr }
func (l *listener) Fd() int        { return l.fd }

// acceptedFD carries an accepted descriptor to netpoll, which copies fd and
// addresses into its own connection (its initNetFD); the net.Conn methods are
// never used.
type acceptedFD struct {
	fd           int
	laddr, raddr net.Addr
}

var errNotUsed = errors.New("loop: acceptedFD is only a carrier for netpoll")

func (a *acceptedFD) Fd() int                          { return a.fd }
func (a *acceptedFD) Read([]byte) (int, error)         { return 0, errNotUsed }
func (a *acceptedFD) Write([]byte) (int, error)        { return 0, errNotUsed }
func (a *acceptedFD) Close() error                     { return unix.Close(a.fd) }
func (a *acceptedFD) LocalAddr() net.Addr              { return a.laddr }
func (a *acceptedFD) RemoteAddr() net.Addr             { return a.raddr }
func (a *acceptedFD) SetDeadline(time.Time) error      { return errNotUsed }
func (a *acceptedFD) SetReadDeadline(time.Time) error  { return errNotUsed }
func (a *acceptedFD) SetWriteDeadline(time.Time) error { return errNotUsed }

func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Net: "unix", Name: sa.Name}
	}
	return nil
}
