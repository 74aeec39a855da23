package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/internal/tarball"
)

// TestReleaseFiles: the release's kept files are unpacked once, on first
// use, and removed by Close; a release without them gets EINVALID saying
// how to rebuild it.
func TestReleaseFiles(t *testing.T) {
	ctx := context.Background()
	store, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "scripts", "smoke.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(&buf, src, []string{"scripts"}); err != nil {
		t.Fatal(err)
	}
	digest, _, err := store.Put(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	rel := &gantry.Release{ID: "1.0.0-abc1234", Ref: "v1.0.0", Artifacts: map[string]gantry.Artifact{
		gantry.SourceArtifact: {Kind: gantry.ArtifactTarball, Digest: digest},
	}}

	files := newReleaseFiles(store, rel)
	dir, err := files.Dir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "scripts", "smoke.sh")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("scripts/smoke.sh unpacked: %v, %v; want an executable file", fi, err)
	}
	if again, _ := files.Dir(ctx); again != dir {
		t.Errorf("second Dir = %s, want the same unpacked %s", again, dir)
	}
	home := files.Home()
	if entries, err := os.ReadDir(home); err != nil || len(entries) != 0 || filepath.Dir(home) != filepath.Dir(dir) {
		t.Errorf("Home() = %s (%v, %d entries), want an empty directory beside %s", home, err, len(entries), dir)
	}
	// A command may leave read-only directories (a Go module cache in HOME).
	if err := os.Mkdir(filepath.Join(home, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	files.Close()
	for _, d := range []string{dir, home} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there after Close (%v)", d, err)
		}
	}

	old := &gantry.Release{ID: "0.9.0-def5678", Ref: "releases/0.9", Artifacts: map[string]gantry.Artifact{"web": {Digest: digest}}}
	_, err = newReleaseFiles(store, old).Dir(ctx)
	if gantry.ErrorCode(err) != gantry.EINVALID {
		t.Fatalf("Dir of a release without %s: %v, want EINVALID", gantry.SourceArtifact, err)
	}
	for _, want := range []string{"0.9.0-def5678", "predates kept files", "gantry release build --ref releases/0.9 --rebuild"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
