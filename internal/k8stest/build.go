package k8stest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrNotBuilt says the cluster's binaries are not in the cache. Tests skip
// on it (or fail fast under GANTRY_INTEGRATION=1); they never build.
var ErrNotBuilt = errors.New("kubernetes test cluster not built")

// Binaries returns the directory holding the cluster's binaries: from
// $GANTRY_K8S_BIN when set, else from the cache of scripts/k8s-cluster.sh.
// It never builds them: a cold build takes minutes and must not run under a
// test binary's timeout; scripts/test.sh runs `k8s-cluster.sh build` before
// go test instead. Not built, the error wraps ErrNotBuilt and says the
// command that builds them.
func Binaries(ctx context.Context) (string, error) {
	if dir := os.Getenv("GANTRY_K8S_BIN"); dir != "" {
		return dir, complete(dir, false)
	}
	script, err := scriptPath()
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, script, "bindir").Output()
	if err != nil {
		return "", fmt.Errorf("%s bindir: %w", script, err)
	}
	dir := strings.TrimSpace(string(out))
	if err := complete(dir, true); err != nil {
		return "", fmt.Errorf("%w in %s: build it with %s build (minutes, once; ./scripts/test.sh does it first): %v", ErrNotBuilt, dir, script, err)
	}
	return dir, nil
}

var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages.yaml"}

// complete checks that dir holds every binary (and, for the cache, the
// stamp the script writes last, so a build cut short is not used).
func complete(dir string, stamp bool) error {
	names := binaries
	if stamp {
		names = append(names[:len(names):len(names)], ".complete")
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("cluster binaries incomplete: %w", err)
		}
	}
	return nil
}

// scriptPath finds scripts/k8s-cluster.sh from this source file, which
// tests always have (they are built from the module's source tree).
func scriptPath() (string, error) {
	const rel = "scripts/k8s-cluster.sh"
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), "..", "..", rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	// Built with -trimpath: tests run in their package's directory, so
	// look upwards for the module root.
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("k8stest: %s not found above the working directory", rel)
		}
		dir = parent
	}
}
