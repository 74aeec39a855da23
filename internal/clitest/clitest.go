// Package clitest holds what end-to-end tests need to run the gantry binary
// as a user would and check how it exits. It is for tests only: no package
// of the program may import it.
package clitest

import (
	"errors"
	"os/exec"
	"testing"
)

// ExitCode is the exit code of a command that ran, from the error its Run,
// Output or CombinedOutput returned (0 for nil); a command that could not
// run at all fails tb.
func ExitCode(tb testing.TB, err error) int {
	tb.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return 0
}
