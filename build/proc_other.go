//go:build !unix

package build

import "os/exec"

// killGroup is a no-op where process groups are not available: cancelling
// kills the shell only.
func killGroup(cmd *exec.Cmd) {}
