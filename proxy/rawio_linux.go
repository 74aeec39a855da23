//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a socket of the loop or of the fast path with raw
// system calls, made from its RawConn's callbacks. The socket is
// non-blocking, so no call waits in the kernel: when it would, it returns
// EAGAIN and the poller waits as for any read or write. What this skips is
// the scheduler's bookkeeping around each call (entersyscall and
// exitsyscall), which a plain read or write pays, and with it sysmon's
// handing of the processor to another thread when the kernel preempts this
// one in the middle of a call: a router sharing its CPU with its targets,
// which the kernel runs as soon as a write wakes them, paid for both with
// thread switches (bench/README.md).
type rawIO struct {
	raw     syscall.RawConn // nil: plain reads and writes
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool

	// The read and the write in progress, for the callbacks: a read and a
	// write can run at once (a request's body read while the answer
	// streams); the RawConn lets only one of each run at a time.
	rd, wr rawCall
}

type rawCall struct {
	p     []byte
	n     int
	errno syscall.Errno
}

func (r *rawIO) init(raw syscall.RawConn) {
	if raw == nil {
		return
	}
	r.raw = raw
	r.readFn, r.writeFn = r.readFD, r.writeFD // bound once: a method value allocates
}

func (r *rawIO) readFD(fd uintptr) bool { return r.rd.call(syscall.SYS_READ, fd) }

func (r *rawIO) writeFD(fd uintptr) bool {
	c := &r.wr
	for len(c.p) > 0 && c.errno == 0 {
		if !c.call(syscall.SYS_WRITE, fd) {
			return false
		}
	}
	return true
}

// call makes one read or write (trap) of c.p on fd, again on EINTR: false
// when it would block (EAGAIN); else c.n and c.p count what it moved, or
// c.errno says why it failed.
func (c *rawCall) call(trap, fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.p))), uintptr(len(c.p)))
		switch e {
		case 0:
			c.n += int(n)
			c.p = c.p[n:]
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.errno = e
		return true
	}
}

// read reads into p as nc.Read does.
func (r *rawIO) read(nc net.Conn, p []byte) (int, error) {
	if r.raw == nil || len(p) == 0 {
		return nc.Read(p)
	}
	c := &r.rd
	*c = rawCall{p: p}
	err := r.raw.Read(r.readFn)
	c.p = nil
	switch {
	case err != nil: // a deadline, a closed connection
		return 0, asConnError(err, "read")
	case c.errno != 0:
		return 0, ioError("read", nc, c.errno)
	case c.n == 0:
		return 0, io.EOF
	}
	return c.n, nil
}

// write writes all of p as nc.Write does.
func (r *rawIO) write(nc net.Conn, p []byte) (int, error) {
	if r.raw == nil {
		return nc.Write(p)
	}
	c := &r.wr
	*c = rawCall{p: p}
	err := r.raw.Write(r.writeFn)
	c.p = nil
	switch {
	case err != nil:
		return c.n, asConnError(err, "write")
	case c.errno != 0:
		return c.n, ioError("write", nc, c.errno)
	}
	return c.n, nil
}

// asConnError names a RawConn's error (a deadline, a closed connection) as
// the connection's own read or write would.
func asConnError(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}

// ioError is the error net.Conn gives for a failed system call.
func ioError(op string, nc net.Conn, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
