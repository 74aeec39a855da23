//go:build !linux

package proxy

import (
	"net"
	"syscall"
)

// rawIO is plain reads and writes here (see rawio_linux.go).
type rawIO struct{}

func (r *rawIO) init(syscall.RawConn) {}

func (r *rawIO) read(nc net.Conn, p []byte) (int, error) { return nc.Read(p) }

func (r *rawIO) write(nc net.Conn, p []byte) (int, error) { return nc.Write(p) }
