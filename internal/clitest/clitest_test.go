package clitest

import (
	"os/exec"
	"strconv"
	"testing"
)

func TestExitCode(t *testing.T) {
	for _, want := range []int{0, 3} {
		err := exec.Command("sh", "-c", "exit "+strconv.Itoa(want)).Run()
		if got := ExitCode(t, err); got != want {
			t.Errorf("ExitCode(exit %d) = %d", want, got)
		}
	}
}
