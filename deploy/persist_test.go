package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// persistDirsOf returns the directory each running instance of app/env was
// told for GANTRY_PERSIST_UPLOADS, by "<slot> <service>".
func persistDirsOf(h *Harness, app, env string) map[string]string {
	out := map[string]string{}
	for _, r := range h.Driver.RunningIn(app, env) {
		out[r.Slot+" "+r.Service] = r.Vars[gantry.PersistVar("uploads")]
	}
	return out
}

// TestPersistentDirectories: a persistent directory belongs to the
// environment: both slots and every release get the same one, a rename
// keeps it, a clone with --with-data copies it, a delete keeps it unless
// purged.
func TestPersistentDirectories(t *testing.T) {
	h := NewHarness(t, Options{})
	app := App{Name: "shop", Services: []Svc{{Name: "web", Persist: "[uploads]"}, {Name: "jobs", Worker: true, Persist: "[uploads, reports]"}},
		Envs: []Env{{Name: "test"}, {Name: "prod", PromoteFrom: "test"}}}
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v1)
	dirs := persistDirsOf(h, "shop", "test")
	dir := dirs["blue web"]
	if dir == "" || !strings.HasPrefix(dir, filepath.Join(h.Dir, "persist")) {
		t.Fatalf("web was told uploads is at %q, want a directory under the server's persist root", dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("uploaded by v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.MustDeploy(t, "shop", "test", v2)
	for who, d := range persistDirsOf(h, "shop", "test") {
		if d != dir {
			t.Errorf("%s: uploads at %q, want the environment's %q", who, d, dir)
		}
	}
	for _, r := range h.Driver.RunningIn("shop", "test") {
		if got := r.Vars[gantry.PersistVar("reports")]; (got != "") != (r.Service == "jobs") {
			t.Errorf("%s %s: GANTRY_PERSIST_REPORTS = %q; only jobs declares it", r.Slot, r.Service, got)
		}
	}

	// A clone with its data starts with a copy, then goes its own way.
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", WithData: true, Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	cdir := persistDirsOf(h, "shop", "testnew")["blue web"]
	if cdir == "" || cdir == dir {
		t.Fatalf("clone's uploads at %q, want a directory of its own (test's is %q)", cdir, dir)
	}
	if b, err := os.ReadFile(filepath.Join(cdir, "a.txt")); err != nil || string(b) != "uploaded by v1" {
		t.Errorf("clone's copy of a.txt = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(cdir, "b.txt"), []byte("only on the clone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.txt")); err == nil {
		t.Errorf("a file written on the clone appeared on test")
	}

	// A rename keeps the directory.
	if _, err := h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "testnew", New: "staging", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	h.MustDeploy(t, "shop", "staging", v1)
	for who, d := range persistDirsOf(h, "shop", "staging") {
		if d != cdir {
			t.Errorf("after the rename %s: uploads at %q, want %q still", who, d, cdir)
		}
	}

	// A delete keeps it; with purge it goes.
	if err := h.O.DeleteEnvironment(h.Ctx, gantry.DeleteEnvironmentRequest{App: "shop", Env: "staging", Force: true, Actor: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cdir, "b.txt")); err != nil {
		t.Errorf("a delete without --purge removed the files: %v", err)
	}
	if err := h.O.DeleteEnvironment(h.Ctx, gantry.DeleteEnvironmentRequest{App: "shop", Env: "test", Force: true, Purge: true, Actor: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a delete with --purge left %s: %v", dir, err)
	}
}

// TestPersistOnSlotRuntime: a runtime that switches slots itself
// (Kubernetes) is no longer refused a persistent directory: each instance
// of both slots is told the same path inside its container, which the
// runtime mounts from the environment's volume.
func TestPersistOnSlotRuntime(t *testing.T) {
	h := NewHarness(t, Options{})
	app := App{Name: "shop", Services: []Svc{{Name: "web", Persist: "[uploads]"}}, Envs: []Env{{Name: "test", Runtime: "kubernetes"}}}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		rel := h.MustRelease(t, app, Rel{Version: v, Images: true})
		if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: rel.ID, Actor: "dev"}, nil); err != nil {
			t.Fatalf("deploy %s: %v", v, err)
		}
	}
	running := h.Slots.RunningIn("shop", "test")
	slots := map[string]bool{}
	for _, r := range running {
		slots[r.Slot] = true
		if got, want := r.Vars["GANTRY_PERSIST_UPLOADS"], "/var/lib/gantry/persist/uploads"; got != want {
			t.Errorf("slot %s: GANTRY_PERSIST_UPLOADS=%q, want %q", r.Slot, got, want)
		}
	}
	if len(slots) != 2 {
		t.Errorf("slots running = %v, want both (the previous one warm)", slots)
	}
}

// TestPersistCloneOnSlotRuntime: a clone with --with-data on a runtime that
// keeps the directories itself (Kubernetes claims) has the runtime copy
// them, from the source's environment into the clone's, each directory
// once, in the "files" step and before the clone's first slot starts; a
// copy that fails fails the clone with the runtime's words, before
// anything of it starts, and removes the clone, which can run again.
func TestPersistCloneOnSlotRuntime(t *testing.T) {
	h := NewHarness(t, Options{})
	app := App{Name: "shop", Services: []Svc{{Name: "web", Persist: "[uploads]"}, {Name: "api", Persist: "[uploads, reports]"}},
		Envs: []Env{{Name: "test", Runtime: "kubernetes"}}}
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	clone := gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", WithData: true, Actor: "dev"}

	h.Slots.CopyPersistErr = gantry.Errorf(gantry.EFAILED, "copy persistent directories: the copy Job shop-testnew/shop-persist-copy-x: failed")
	d, err := h.O.Clone(h.Ctx, clone, nil)
	if err == nil || !strings.Contains(err.Error(), "the copy Job shop-testnew/shop-persist-copy-x: failed") {
		t.Fatalf("clone with a failing copy = %v, want the copy's failure", err)
	}
	if starts := h.Slots.Calls("start-slot"); slices.ContainsFunc(starts, func(c memdriver.Call) bool { return c.Env == "testnew" }) {
		t.Errorf("a slot of the clone started after its copy failed: %v", starts)
	}
	if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("the clone after its copy failed: %v, want removed", err)
	}
	if d != nil {
		if steps := h.Steps(t, d.ID); !slices.Contains(steps, "files") {
			t.Errorf("journal of the failed clone %v: want its files step", steps)
		}
	}

	h.Slots.CopyPersistErr = nil
	d, err = h.O.Clone(h.Ctx, clone, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := h.Steps(t, d.ID)
	if !slices.Contains(steps, "files") || slices.Contains(steps, "copy-files") {
		t.Errorf("journal %v: want the runtime's files step, and no copy-files step (the server's directories)", steps)
	}
	if i, j := slices.Index(steps, "files"), slices.Index(steps, "start"); j >= 0 && i > j {
		t.Errorf("journal %v: the files are copied after the slot started", steps)
	}
	copies := h.Slots.Calls("copy-persist")
	if len(copies) != 2 || copies[1].Env != "testnew" || copies[1].Service != "reports,uploads" {
		t.Errorf("copy-persist calls %v, want the second into testnew of reports,uploads", copies)
	}
	full, err := h.Store.FindDeployment(h.Ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range full.Steps {
		if s.Name == "files" && !strings.Contains(s.Detail, "reports, uploads copied from test") {
			t.Errorf("files step %q: want what the runtime copied", s.Detail)
		}
	}
}

// TestFailedCloneRemovesItsFiles: a clone with --with-data whose release
// does not come up removes the copy of the files it made with the
// environment, as it does its database copy (a crash in the middle of the
// copy is removed the same way by the recovery), and runs again.
func TestFailedCloneRemovesItsFiles(t *testing.T) {
	h := NewHarness(t, Options{})
	app := App{Name: "shop", Services: []Svc{{Name: "web", Persist: "[uploads]"}}, Envs: []Env{{Name: "test"}}}
	rel := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", rel)
	dir := persistDirsOf(h, "shop", "test")["blue web"]
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("uploaded"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Driver.SetRelease(rel.ID, memdriver.Knobs{FailStart: true})
	clone := gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", WithData: true, Actor: "dev"}
	if _, err := h.O.Clone(h.Ctx, clone, nil); err == nil {
		t.Fatal("the clone succeeded though its instances cannot start")
	}
	entries, err := os.ReadDir(filepath.Join(h.Dir, "persist"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || filepath.Join(h.Dir, "persist", entries[0].Name()) != filepath.Dir(dir) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("after the failed clone the persist root holds %v, want test's %s only", names, filepath.Base(filepath.Dir(dir)))
	}
	h.Driver.SetRelease(rel.ID, memdriver.Knobs{})
	if _, err := h.O.Clone(h.Ctx, clone, nil); err != nil {
		t.Fatalf("the clone again: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(persistDirsOf(h, "shop", "testnew")["blue web"], "a.txt")); err != nil || string(b) != "uploaded" {
		t.Errorf("the clone's copy of a.txt = %q, %v", b, err)
	}
}
