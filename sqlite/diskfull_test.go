package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/smallfs"
)

// TestDiskFull checks that a write the full disk refuses is the coded
// disk-full error (EUNAVAILABLE, saying so), not an internal error, and
// that the store writes again once space returns.
func TestDiskFull(t *testing.T) {
	dir := smallfs.Mount(t, 4<<20)
	db := MustOpen(t, filepath.Join(dir, "state.db"))
	ctx := t.Context()
	if err := db.CreateApp(ctx, &gantry.App{Name: "before", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	d := &gantry.Deployment{App: "before", Env: "test", Kind: gantry.KindDeploy, Actor: "t", State: gantry.DeploymentRunning}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	free := smallfs.Fill(t, dir)
	var err error
	// The WAL may hold a few pages' room: write until it is used up.
	for i := 0; i < 200 && err == nil; i++ {
		err = db.AppendStep(ctx, d.ID, &gantry.Step{Name: strings.Repeat("s", 4000), State: gantry.StepStarted})
	}
	if err == nil {
		t.Fatal("200 writes to a full disk succeeded")
	}
	if got := gantry.ErrorCode(err); got != gantry.EUNAVAILABLE {
		t.Fatalf("error code on a full disk = %s (%v), want %s", got, err, gantry.EUNAVAILABLE)
	}
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "disk of the data directory is full") {
		t.Fatalf("message on a full disk = %q, want it to say the disk is full", msg)
	}
	free()
	if err := db.CreateApp(ctx, &gantry.App{Name: "after", Repo: "/r"}); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
}
