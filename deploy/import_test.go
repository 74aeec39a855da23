package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/build"
	"github.com/gantry-dev/gantry/manifest"
	"github.com/gantry-dev/gantry/sqlite"
)

const importManifest = `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /web
verify:
  - command: ./scripts/smoke.sh
environments:
  test: {runtime: {driver: docker, registry: 127.0.0.1:5000/shop}}
`

// TestImportKeepsSource: an imported image release keeps the files of its
// commit, read from the app's repository, so that its verify commands run
// in them as a built release's do. The registry is the one fake: checking
// an image needs a running one.
func TestImportKeepsSource(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	ctx := context.Background()
	repo := t.TempDir()
	files := map[string]string{"gantry.yml": importManifest, "Dockerfile": "FROM scratch\n", "scripts/smoke.sh": "#!/bin/sh\necho ok\n"}
	for name, content := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "first"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	store, err := artifact.NewLocal(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: repo}); err != nil {
		t.Fatal(err)
	}
	b := &build.Builder{Artifacts: store, WorkDir: filepath.Join(t.TempDir(), "work"), Decode: manifest.Decode}
	digest := "sha256:" + strings.Repeat("4f", 32)
	s := &Releases{Store: db, Artifacts: store, Manifest: b.Manifest, Source: b.Source, CommitTime: b.CommitTime,
		CheckImage: func(ctx context.Context, ref string) (gantry.Artifact, error) {
			return gantry.Artifact{Kind: gantry.ArtifactImage, Digest: digest, Image: ref}, nil
		}}
	rel, err := s.ImportRelease(ctx, gantry.ImportRequest{App: "shop", Version: "3.0.4", Commit: "main",
		Images: map[string]string{"web": "127.0.0.1:5000/shop/web@" + digest}, Actor: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rel.ServiceNames(); len(got) != 1 || got[0] != "web" {
		t.Errorf("services = %v, want [web]", got)
	}
	if rel.CommittedAt.IsZero() || rel.CommittedAt.After(time.Now()) {
		t.Errorf("committed at %v: want the commit's time, for its lead time", rel.CommittedAt)
	}
	dir, err := newReleaseFiles(store, rel).Dir(ctx)
	if err != nil {
		t.Fatalf("files of the imported release: %v", err)
	}
	defer removeTree(dir)
	for name, content := range files {
		if got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(got) != content {
			t.Errorf("%s of the imported release = %q, %v; want the commit's", name, got, err)
		}
	}
}
