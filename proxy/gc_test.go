package proxy

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestUseRouterGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	t.Setenv("GOGC", "50")
	UseRouterGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set, GC percent = %d, want it left at 100", got)
	}

	// t.Setenv above restores GOGC after the test.
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	UseRouterGC()
	if got := debug.SetGCPercent(100); got != RouterGCPercent {
		t.Fatalf("GC percent = %d, want %d", got, RouterGCPercent)
	}
}
