package process_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// TestStopRespectsContext ends Stop's context while it waits on an instance
// that ignores SIGTERM: Stop returns the context's error at once and leaves
// the instance alone, and a later Stop still ends it.
func TestStopRespectsContext(t *testing.T) {
	d := MustDriver(t)
	spec := appSpec("blue", "web", 0, drivertest.FreePort(t))
	spec.Vars["TESTAPP_IGNORE_SIGTERM"] = "1"
	inst := MustStart(t, d, spec)
	drivertest.WaitUp(t, inst)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := d.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with an ending context: error %v, want %v", err, context.DeadlineExceeded)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Stop returned %s after its context ended", took)
	}
	if st, err := d.Inspect(context.Background(), inst); err != nil || st.State != gantry.InstanceRunning {
		t.Errorf("Inspect after an interrupted Stop: %+v, %v; want running", st, err)
	}
	if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: 100 * time.Millisecond}); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	drivertest.WaitDown(t, inst)
}

// TestEnvironmentIsolated checks that the server's own environment does not
// reach instances (only PATH and HOME do), that Vars cannot override the
// variables the driver sets, and that StartedAt comes from Now.
func TestEnvironmentIsolated(t *testing.T) {
	t.Setenv("GANTRY_SERVER_ONLY", "leaked")
	d := MustDriver(t)
	at := time.Date(2026, 3, 16, 12, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return at }
	spec := appSpec("blue", "web", 0, drivertest.FreePort(t))
	spec.Vars["GANTRY_SLOT"] = "green"
	spec.Vars["PORT"] = "1"
	spec.Vars["PATH"] = "/opt/app/bin:/usr/bin:/bin"
	inst := MustStart(t, d, spec)
	if !inst.StartedAt.Equal(at) {
		t.Errorf("StartedAt: got %s, want %s", inst.StartedAt, at)
	}
	drivertest.WaitUp(t, inst)
	for _, tt := range []struct{ name, want string }{
		{"GANTRY_SERVER_ONLY", ""},
		{"GANTRY_SLOT", "blue"},
		{"PATH", "/opt/app/bin:/usr/bin:/bin"},
	} {
		if got := drivertest.MustGet(t, inst, "/env?name="+tt.name); got != tt.want {
			t.Errorf("instance sees %s=%q, want %q", tt.name, got, tt.want)
		}
	}
}
