//go:build !linux

package dbchange

import "os/exec"

// dieWithServer does nothing where the kernel cannot tie a child's life
// to its parent's.
func dieWithServer(*exec.Cmd) {}
