package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/process"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// TestListInstancesAfterRestart checks that an instance is known by its
// identity from the moment Start returns: a driver created afterwards on
// the same directory (a server restarted after a kill -9, which never
// saved the handle) lists it with its slot, release and a handle it can
// stop; once stopped, it is listed no more.
func TestListInstancesAfterRestart(t *testing.T) {
	d := MustDriver(t)
	inst, err := d.Start(context.Background(), appSpec("green", "web", 2, drivertest.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	other := MustStart(t, d, appSpec("blue", "web", 1, drivertest.FreePort(t)))
	after, err := process.New(d.Dir, artifacts, nil)
	if err != nil {
		t.Fatal(err)
	}
	found, err := after.ListInstances(context.Background(), appName, "test")
	if err != nil {
		t.Fatal(err)
	}
	var got *gantry.FoundInstance
	for i, f := range found {
		if f.Instance.Handle == inst.Handle {
			got = &found[i]
		}
	}
	if len(found) != 2 || got == nil {
		t.Fatalf("ListInstances after a restart found %+v, want the 2 started (one with handle %s)", found, inst.Handle)
	}
	if got.Slot != "green" || got.Instance.Service != "web" || got.Instance.Index != 2 || got.Instance.ReleaseID != "r-web" || !got.Running || got.Instance.Addr != inst.Addr {
		t.Errorf("found %+v, want green web-2 of r-web at %s, running", *got, inst.Addr)
	}
	if none, _ := after.ListInstances(context.Background(), appName, "prod"); len(none) != 0 {
		t.Errorf("instances of test listed for prod: %+v", none)
	}
	if err := after.Stop(context.Background(), got.Instance, gantry.StopSpec{Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("stop a found instance: %v", err)
	}
	found, _ = after.ListInstances(context.Background(), appName, "test")
	if len(found) != 1 || found[0].Instance.Handle != other.Handle {
		t.Errorf("after Stop ListInstances found %+v, want only %s", found, other.Handle)
	}
}
