//go:build unix

package build

import (
	"os/exec"
	"syscall"
)

// killGroup makes cancelling a build stop the whole process group: sh -c
// starts compilers and tools that would otherwise outlive it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
