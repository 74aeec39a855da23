package process_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// fakeInstance is an instance whose log the test writes itself, the way an
// instance does (O_APPEND); its pid names no process.
func fakeInstance(t *testing.T, dir string) (gantry.Instance, *os.File) {
	t.Helper()
	logPath := filepath.Join(dir, "fake.log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h, _ := json.Marshal(map[string]any{"pid": 1 << 30, "pgid": 1 << 30, "start_time": 1, "log": logPath})
	return gantry.Instance{Service: "fake", Handle: string(h)}, f
}

// TestFollowAcrossRotation rotates the log between two writes while Logs
// follows it: what was written before the rotation and not yet read must
// come from the .1 file, so the follower sees every line once, in order,
// whenever its polls happen to fall.
func TestFollowAcrossRotation(t *testing.T) {
	d := MustDriver(t)
	d.LogMaxBytes = 64
	inst, f := fakeInstance(t, d.Dir)
	long := strings.Repeat("y", 80) + "\n"
	f.WriteString("one\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf drivertest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- d.Logs(ctx, inst, 0, true, &buf) }()
	if !drivertest.WaitFor(10*time.Second, func() bool { return buf.String() == "one\n" }) {
		t.Fatalf("follow first wrote %q, want %q", buf.String(), "one\n")
	}
	f.WriteString("two\n" + long)
	// Inspect rotates a log past LogMaxBytes on the spot.
	if _, err := d.Inspect(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	f.WriteString("three\n")
	want := "one\ntwo\n" + long + "three\n"
	if !drivertest.WaitFor(10*time.Second, func() bool { return buf.String() == want }) {
		t.Fatalf("follow across a rotation: got %q, want %q", buf.String(), want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs after cancel: %v", err)
	}
	for _, tt := range []struct{ path, want string }{
		{f.Name() + ".1", "one\ntwo\n" + long},
		{f.Name(), "three\n"},
	} {
		b, err := os.ReadFile(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s: got %q, want %q", filepath.Base(tt.path), b, tt.want)
		}
	}
}

// TestRotationByWatcher checks that a running instance's log is rotated in
// the background, without anyone calling Logs or Inspect, and that the
// instance keeps writing to the truncated file.
func TestRotationByWatcher(t *testing.T) {
	d := MustDriver(t)
	d.LogMaxBytes = 4096
	d.RotateInterval = 20 * time.Millisecond
	inst := MustStart(t, d, appSpec("blue", "web", 0, drivertest.FreePort(t)))
	drivertest.WaitUp(t, inst)
	var h struct{ Log string }
	json.Unmarshal([]byte(inst.Handle), &h)

	drivertest.MustGet(t, inst, "/spam?n=100&size=100&prefix=a")
	var size int64
	if !drivertest.WaitFor(10*time.Second, func() bool {
		fi, err := os.Stat(h.Log + ".1")
		if err != nil {
			return false
		}
		size = fi.Size()
		return true
	}) {
		t.Fatal("no rotation of a log past LogMaxBytes")
	}
	if size < 100*100 {
		t.Errorf("rotated log holds %d bytes, want at least the %d written", size, 100*100)
	}
	drivertest.MustGet(t, inst, "/log?line=after-rotation")
	b, err := os.ReadFile(h.Log)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "after-rotation\n" {
		t.Errorf("log after rotation: got %q, want %q", got, "after-rotation\n")
	}
}

func TestLogsWithoutLogFile(t *testing.T) {
	d := MustDriver(t)
	h, _ := json.Marshal(map[string]any{"pid": 1 << 30, "pgid": 1 << 30, "start_time": 1, "log": filepath.Join(d.Dir, "none.log")})
	err := d.Logs(context.Background(), gantry.Instance{Service: "web", Handle: string(h)}, 0, false, os.Stdout)
	if gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Logs without a log file: error %v, want code %q", err, gantry.ENOTFOUND)
	}
}
