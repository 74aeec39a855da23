//go:build linux

package dbchange

import (
	"os/exec"
	"syscall"
)

// dieWithServer makes pg_dump and pg_restore end with the server: killed
// (SIGKILL, a crash), it would otherwise leave them writing a dump or a
// copy that recovery is about to remove.
func dieWithServer(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
