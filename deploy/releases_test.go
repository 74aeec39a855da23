package deploy_test

// Test releases: stored directly, with their artifacts (and migrations) in
// the artifact store.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/tarball"
	"github.com/gantry-dev/gantry/manifest"
)

// Rel says what a test release is made of.
type Rel struct {
	Version    string
	Ref        string
	Migrations []string // names of the release's migrations, in order
	Images     bool     // image artifacts (for the slot-driven runtime)
	// Same are services whose artifact does not depend on the version:
	// every release with Same: [web] has the same web.
	Same []string
	// Versions are services' own versions (Artifact.Version).
	Versions map[string]string
}

// MustApp creates an app in the store (once).
func (h *Harness) MustApp(tb testing.TB, name string) {
	tb.Helper()
	if _, err := h.Store.FindApp(h.Ctx, name); err == nil {
		return
	}
	if err := h.Store.CreateApp(h.Ctx, &gantry.App{Name: name, Repo: "/nonexistent/" + name, CreatedAt: T0}); err != nil {
		tb.Fatalf("create app %s: %v", name, err)
	}
}

// MustRelease stores a release of app a, with its artifacts in the
// artifact store so that verify-artifacts passes, and a migrations tarball
// when the app declares a database.
func (h *Harness) MustRelease(tb testing.TB, a App, r Rel) *gantry.Release {
	tb.Helper()
	h.MustApp(tb, a.Name)
	yml := a.YAML()
	h.mu.Lock()
	checked := h.ymls[yml]
	h.mu.Unlock()
	if !checked {
		if _, err := manifest.Decode("gantry.yml", []byte(yml)); err != nil {
			tb.Fatalf("test manifest does not decode: %v\n%s", err, yml)
		}
		h.mu.Lock()
		if h.ymls == nil {
			h.ymls = map[string]bool{}
		}
		h.ymls[yml] = true
		h.mu.Unlock()
	}
	sum := sha256.Sum256([]byte(a.Name + "\x00" + r.Version + "\x00" + yml + "\x00" + strings.Join(r.Migrations, ",") + "\x00" + strings.Join(r.Same, ",") + "\x00" + fmt.Sprint(r.Versions)))
	id := "r" + hex.EncodeToString(sum[:])[:15]
	if rel, err := h.Store.FindRelease(h.Ctx, a.Name, id); err == nil {
		return rel
	}
	md := sha256.Sum256([]byte(yml))
	rel := &gantry.Release{ID: id, App: a.Name, Version: r.Version, Commit: hex.EncodeToString(sum[:20]), Ref: r.Ref,
		Artifacts: map[string]gantry.Artifact{}, Manifest: []byte(yml), ManifestDigest: "sha256:" + hex.EncodeToString(md[:]),
		Builder: "test", CreatedAt: T0}
	for _, s := range a.Services {
		if r.Images {
			d := sha256.Sum256([]byte(id + s.Name))
			dg := "sha256:" + hex.EncodeToString(d[:])
			rel.Artifacts[s.Name] = gantry.Artifact{Kind: gantry.ArtifactImage, Digest: dg, Image: "registry.test/" + a.Name + "@" + dg}
			continue
		}
		content := "binary of " + s.Name + " " + r.Version
		if contains(r.Same, s.Name) {
			content = "binary of " + s.Name
		}
		dg, size, err := h.Artifacts.Put(h.Ctx, strings.NewReader(content))
		if err != nil {
			tb.Fatal(err)
		}
		rel.Artifacts[s.Name] = gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: dg, Size: size, Version: r.Versions[s.Name]}
	}
	if a.Database {
		key := strings.Join(r.Migrations, ",")
		h.mu.Lock()
		art, ok := h.migs[key]
		h.mu.Unlock()
		if !ok {
			dg, size := h.mustMigrations(tb, r.Migrations)
			art = gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: dg, Size: size}
			h.mu.Lock()
			if h.migs == nil {
				h.migs = map[string]gantry.Artifact{}
			}
			h.migs[key] = art
			h.mu.Unlock()
		}
		rel.Artifacts[gantry.MigrationsArtifact] = art
	}
	// The commit's files, kept with every release built since they are:
	// verify commands and hooks run in them.
	src := h.mustSource(tb, yml)
	rel.Artifacts[gantry.SourceArtifact] = src
	if err := h.Store.CreateRelease(h.Ctx, rel); err != nil {
		tb.Fatalf("create release %s: %v", r.Version, err)
	}
	return rel
}

// mustSource puts a tarball of a commit's files (its gantry.yml) into the
// artifact store.
func (h *Harness) mustSource(tb testing.TB, yml string) gantry.Artifact {
	tb.Helper()
	h.mu.Lock()
	art, ok := h.srcs[yml]
	h.mu.Unlock()
	if ok {
		return art
	}
	art = h.packSource(tb, yml)
	h.mu.Lock()
	if h.srcs == nil {
		h.srcs = map[string]gantry.Artifact{}
	}
	h.srcs[yml] = art
	h.mu.Unlock()
	return art
}

func (h *Harness) packSource(tb testing.TB, yml string) gantry.Artifact {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gantry.yml"), []byte(yml), 0o644); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(&buf, dir, []string{"gantry.yml"}); err != nil {
		tb.Fatal(err)
	}
	dg, size, err := h.Artifacts.Put(h.Ctx, &buf)
	if err != nil {
		tb.Fatal(err)
	}
	return gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: dg, Size: size}
}

// mustMigrations puts a tarball of db/migrations/<name>.json into the
// artifact store.
func (h *Harness) mustMigrations(tb testing.TB, names []string) (string, int64) {
	tb.Helper()
	dir := tb.TempDir()
	mdir := filepath.Join(dir, "db", "migrations")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, n := range names {
		body := fmt.Sprintf(`{"name": %q, "operations": []}`, n)
		if err := os.WriteFile(filepath.Join(mdir, n+".json"), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := tarball.Write(&buf, dir, []string{"db/migrations"}); err != nil {
		tb.Fatal(err)
	}
	dg, size, err := h.Artifacts.Put(h.Ctx, &buf)
	if err != nil {
		tb.Fatal(err)
	}
	return dg, size
}
