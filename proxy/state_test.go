package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestRestoreSnapshotGolden restores a state file and checks that Snapshot
// gives back exactly the same document.
func TestRestoreSnapshotGolden(t *testing.T) {
	const golden = "testdata/state.golden.json"
	in, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(in, &s); err != nil {
		t.Fatal(err)
	}
	r := New(Config{})
	defer r.Close()
	if err := r.Restore(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(r.Snapshot(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(in, out) {
		t.Errorf("Snapshot after Restore differs from %s:\n%s", golden, out)
	}
	if name, ok := r.Lookup("shop.localhost", "/"); !ok || name != "shop/prod" {
		t.Errorf("restored route lookup = %q, %v", name, ok)
	}
}

func TestRestoreRejectsConflicts(t *testing.T) {
	r := New(Config{})
	defer r.Close()
	s := State{Routes: []RouteState{
		{Route: fastRoute("a", "x.localhost")},
		{Route: fastRoute("b", "x.localhost")},
	}}
	if err := r.Restore(context.Background(), s); err == nil {
		t.Fatal("restore of two routes on one host succeeded")
	}
	if st, _ := r.Status(context.Background()); len(st) != 0 {
		t.Errorf("a refused restore left %d routes", len(st))
	}
}

func TestSnapshotRestoreServesAtOnce(t *testing.T) {
	var changes atomic.Int64
	r1, _ := MustRouter(t, Config{OnChange: func() { changes.Add(1) }})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.PreviewHosts = []string{"next.app.localhost"}
	MustDeploy(t, r1, rc, a.addr())
	MustDeploy(t, r1, rc, b.addr())
	ctx := context.Background()
	if err := r1.SetPreview(ctx, "app/prod", []string{a.addr()}); err != nil {
		t.Fatal(err)
	}
	if err := r1.Pause(ctx, "app/prod", true); err != nil {
		t.Fatal(err)
	}
	if got := changes.Load(); got != 4 {
		t.Errorf("OnChange called %d times after 2 deploys, a preview and a pause; want 4", got)
	}
	snap := r1.Snapshot()
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}

	r2, front2 := MustRouter(t, Config{})
	if err := r2.Restore(ctx, s); err != nil {
		t.Fatal(err)
	}
	// No health round: the restored active set serves immediately.
	if code, body := MustGet(t, testClient(), front2, "app.localhost", "/"); code != 200 || body != "b" {
		t.Errorf("restored router: got %d %q, want 200 \"b\"", code, body)
	}
	st, _ := r2.Status(ctx)
	if len(st) != 1 || !st[0].Paused || !st[0].WritesOnly || len(st[0].Previous) != 1 || st[0].Previous[0] != a.addr() || len(st[0].Preview) != 1 {
		t.Errorf("restored status = %+v", st)
	}
	// Rollback works across the restart.
	if _, err := r2.Rollback(ctx, "app/prod"); err != nil {
		t.Fatal(err)
	}
	if _, body := MustGet(t, testClient(), front2, "app.localhost", "/"); body != "a" {
		t.Errorf("rollback after restore served %q, want \"a\"", body)
	}
	if !snap.Routes[0].SwitchedAt.After(time.Time{}) {
		t.Errorf("snapshot has no switch time")
	}
}
