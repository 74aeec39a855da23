// Package smallfs gives tests a small filesystem of their own, to fill up:
// a tmpfs mounted for the test and unmounted after it. It needs root (or
// CAP_SYS_ADMIN); without it the test is skipped, or failed when
// GANTRY_INTEGRATION=1 asks for every test to run. Only tests import it.
package smallfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new directory and returns it; the
// test's cleanup unmounts it.
func Mount(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			tb.Fatalf("mount a small tmpfs on %s: %v", dir, err)
		}
		tb.Skipf("cannot mount a small tmpfs (%v): run as root to test a full disk", err)
	}
	tb.Cleanup(func() {
		// A process a test left running may still hold a file open: lazy
		// unmount detaches the filesystem now and frees it once unused.
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file into dir until the filesystem has no space left, and
// returns a function that removes it again.
func Fill(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("fill %s: %v", dir, err)
	}
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				tb.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// The last chunk's tail may still fit in smaller writes.
	for n := 32 << 10; n > 0; n /= 2 {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			tb.Errorf("free %s: %v", dir, err)
		}
	}
}
