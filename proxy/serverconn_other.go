//go:build !unix

package proxy

import (
	"errors"
	"syscall"
)

// canWaitReadable: waitReadable does not work here.
const canWaitReadable = false

// waitReadable cannot wait without reading here: the loop keeps its
// buffer, and no watch cancels a request whose client left.
func waitReadable(syscall.RawConn) (closed bool, err error) {
	return false, errors.ErrUnsupported
}
