//go:build unix

package proxy

import "syscall"

// canWaitReadable: waitReadable works here.
const canWaitReadable = true

// waitReadable waits, holding no buffer, until the connection has bytes to
// read or has ended (closed), or its read deadline passes (err).
func waitReadable(raw syscall.RawConn) (closed bool, err error) {
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		for {
			n, _, e := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			closed = e != nil || n == 0
			return true
		}
	})
	return closed, err
}
