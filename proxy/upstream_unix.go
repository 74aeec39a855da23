//go:build unix

package proxy

import "syscall"

// alive says an idle connection is still open: a peek that must not block
// finds neither an end of stream (the target closed it) nor stray bytes.
func (uc *upConn) alive() bool {
	if uc.raw == nil {
		return true
	}
	var buf [1]byte
	ok := true
	err := uc.raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait for readiness
	})
	return err == nil && ok
}
