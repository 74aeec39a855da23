package drivertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// TestAppPackage is the import path of the suite's instance program.
const TestAppPackage = "github.com/gantry-dev/gantry/internal/drivertest/testapp"

// BuildTestApp compiles the suite's instance program, statically (so that it
// also runs in a minimal container image), to dir/bin/testapp, and returns
// that path. Call it once per test binary, from TestMain: it takes seconds.
func BuildTestApp(dir string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out := filepath.Join(dir, "bin", "testapp")
	cmd := exec.Command(gobin, "build", "-o", out, TestAppPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", TestAppPackage, err, b)
	}
	return out, nil
}
