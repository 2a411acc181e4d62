package loop

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// rawWrite writes p to the non-blocking socket fd, waiting for POLLOUT up to
// timeout when the socket buffer is full. It is the fallback used when netpoll
// no longer accepts writes for a connection whose peer half-closed (see
// Conn.writeLocked); poll blocks an OS thread, which is acceptable because it
// only happens for half-closed peers with a full socket buffer.
func rawWrite(fd int, p []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if n > 0 {
			p = p[n:]
		}
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			left := time.Until(deadline)
			if left <= 0 {
				return ErrWriteTimeout
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// writeNonblock writes as much of p as the socket takes without waiting.
func writeNonblock(fd int, p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(fd, p[written:])
		if n > 0 {
			written += n
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return written, err
		}
	}
	return written, nil
}

// dupFD duplicates fd with close-on-exec set.
func dupFD(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

func closeFD(fd int) { _ = unix.Close(fd) }
