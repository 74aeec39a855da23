package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// TestKilledServerReattaches: a server starts a slot and is killed before it
// persists a handle. The next server (a new driver value) finds the
// instances by their labels, attaches to them, and a Start of the same
// instances adopts them: nothing is started twice.
func TestKilledServerReattaches(t *testing.T) {
	ctx := context.Background()
	first := MustDriver(t)
	var specs []gantry.InstanceSpec
	ids := map[int]string{}
	for i := range 2 {
		s := spec("crash", "green", "web", i, drivertest.FreePort(t))
		specs = append(specs, s)
		inst := MustStart(t, first, s)
		drivertest.WaitUp(t, inst)
		ids[i] = drivertest.MustGet(t, inst, "/id")
	}

	second := MustDriver(t) // the restarted server
	found, err := second.Find(ctx, appName, "crash", "")
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if len(found) != 2 {
		t.Fatalf("Find: %d containers, want 2: %+v", len(found), found)
	}
	for i, f := range found {
		if f.Slot != "green" || f.Release != "r1" || !f.Running || f.Instance.Index != i || f.Image != testImage.Image {
			t.Errorf("Find[%d] = %+v, want instance %d of release r1 running in slot green from %s", i, f, i, testImage.Image)
		}
		if err := second.Attach(ctx, f.Instance); err != nil {
			t.Errorf("Attach(found %d): %v", i, err)
		}
		if got := drivertest.MustGet(t, f.Instance, "/id"); got != ids[i] {
			t.Errorf("found instance %d answers as %q, want %q", i, got, ids[i])
		}
		// The deployment resumes and starts the slot again: adopted.
		inst, err := second.Start(ctx, specs[i])
		if err != nil {
			t.Fatalf("Start after restart: %v", err)
		}
		if inst.Handle != f.Instance.Handle {
			t.Errorf("Start after restart made container %s, want the running %s adopted", inst.Handle, f.Instance.Handle)
		}
		if got := drivertest.MustGet(t, inst, "/id"); got != ids[i] {
			t.Errorf("after Start the instance answers as %q, want %q: it was started twice", got, ids[i])
		}
	}
	again, err := second.Find(ctx, appName, "crash", "")
	if err != nil || len(again) != 2 {
		t.Errorf("Find after the second Start: %d containers (%v), want 2", len(again), err)
	}

	// Another release on a running instance's name is a conflict, not a
	// silent replacement.
	other := specs[0]
	other.ReleaseID = "r2"
	if _, err := second.Start(ctx, other); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("Start of another release over a running instance: %v, want code %q", err, gantry.ECONFLICT)
	}

	// Once stopped, the same name starts afresh.
	if err := second.Stop(ctx, found[0].Instance, gantry.StopSpec{Signal: "SIGTERM", Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	inst := MustStart(t, second, other)
	drivertest.WaitUp(t, inst)
	if inst.Handle == found[0].Instance.Handle {
		t.Error("Start after Stop reused the stopped container")
	}
	if got := drivertest.MustGet(t, inst, "/"); got != "release=r2 slot=green\n" {
		t.Errorf("GET / = %q, want release r2", got)
	}
}
