package gantry

import (
	"errors"
	"syscall"
)

// IsDiskFull reports whether err is a write refused by the filesystem for
// lack of room or of write access: no space left (ENOSPC), over quota
// (EDQUOT) or read-only (EROFS). Such a failure is the operator's to fix,
// not a bug, and it goes away when space returns.
func IsDiskFull(err error) bool {
	var d *diskFullError
	return errors.As(err, &d) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// DiskFullError is the one coded error of a write to the data directory
// that the disk refused: EUNAVAILABLE, with a message that says so and
// what to do, so that the API and the CLI say "the disk is full" instead
// of "internal error". cause stays in the chain for the server's log.
func DiskFullError(what string, cause error) error {
	e := Errorf(EUNAVAILABLE, "the disk of the data directory is full or read-only (writing %s: %v); free space there, then retry", what, cause)
	return &diskFullError{coded: e, cause: cause}
}

// diskFullError carries both the coded error and its cause, and marks the
// chain for IsDiskFull whatever the store's own word for it was.
type diskFullError struct {
	coded *Error
	cause error
}

func (e *diskFullError) Error() string   { return e.coded.Error() }
func (e *diskFullError) Unwrap() []error { return []error{e.coded, e.cause} }
