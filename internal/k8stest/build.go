package k8stest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// buildTimeout bounds a cold build (about 7 minutes on two idle cores).
const buildTimeout = 25 * time.Minute

// Binaries returns the directory holding the cluster's binaries. They come
// from $GANTRY_K8S_BIN when set, else from the cache of
// scripts/k8s-cluster.sh, which builds them when build is true and they are
// not cached yet. The script serialises concurrent builds with a lock, so
// test binaries of several packages build at most once between them.
func Binaries(ctx context.Context, build bool) (string, error) {
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
	if complete(dir, true) == nil {
		return dir, nil
	}
	if !build {
		return "", fmt.Errorf("cluster binaries not cached in %s (run %s build)", dir, script)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", errors.New("building the cluster needs the go command")
	}
	fmt.Fprintf(os.Stderr, "k8stest: building the cluster binaries into %s (minutes, once)\n", dir)
	begin := time.Now()
	cmd := exec.CommandContext(ctx, script, "build")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return "", fmt.Errorf("%s build: %w\n%s", script, err, tail)
	}
	fmt.Fprintf(os.Stderr, "k8stest: built in %s\n", time.Since(begin).Round(time.Second))
	return dir, complete(dir, true)
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
