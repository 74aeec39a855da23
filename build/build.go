// Package build makes releases from git refs: it resolves a ref to a commit,
// exports exactly that commit into a fresh directory, reads the commit's
// gantry.yml, keeps the export itself with the release (gantry.SourceArtifact,
// where verify commands and hooks later run), runs the before_build callback
// and each service's build command in the export, stores the artifacts as
// deterministic tarballs, and derives the version.
//
// It must never build from a working tree (uncommitted or unpushed work can
// not leak into a release), never store anything but artifacts (the caller
// assigns the release ID and saves the release), and never decode gantry.yml
// itself: the decoder is injected, so the manifest rules live in one place.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// ManifestFile is the manifest's name at the root of a commit.
const ManifestFile = "gantry.yml"

// Log attribute keys.
const (
	logApp     = "app"
	logCommit  = "commit"
	logRef     = "ref"
	logService = "service"
	logVersion = "version"
	logDigest  = "digest"
	logElapsed = "elapsed"
)

// Builder builds releases. Its zero value is not usable: Artifacts, WorkDir
// and Decode are required. It is safe for concurrent builds.
type Builder struct {
	Artifacts gantry.ArtifactStore
	// WorkDir holds exports (each removed after its build) and mirrors of
	// remote repositories. It should not lie inside a git working tree.
	WorkDir string
	// Decode decodes and validates a gantry.yml; package manifest provides it.
	Decode func(filename string, data []byte) (*gantry.Manifest, error)
	Logger *slog.Logger
	Now    func() time.Time
	// Images builds and pushes the image of a service built with docker
	// (driver/docker's BuildImage, wired by cmd/gantry). Without it such
	// services are skipped with a note.
	Images func(ctx context.Context, req ImageRequest) (gantry.Artifact, error)

	mu      sync.Mutex
	mirrors map[string]*sync.Mutex
}

// Request asks for one release.
type Request struct {
	App      string // must equal the manifest's app
	Repo     string // a local path or URL of a git repository
	Ref      string // branch, tag, or commit; default HEAD
	Version  string // optional override
	Builder  string // actor recorded in the release
	Progress io.Writer
	// BeforeBuild, when set, runs in the export before any service is built
	// (the before_build hooks, wired by the caller).
	BeforeBuild BeforeBuildFunc
}

func (b *Builder) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

func (b *Builder) now() time.Time {
	if b.Now == nil {
		return time.Now().UTC()
	}
	return b.Now().UTC()
}

func (b *Builder) mirrorLock(dir string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mirrors == nil {
		b.mirrors = map[string]*sync.Mutex{}
	}
	mu, ok := b.mirrors[dir]
	if !ok {
		mu = &sync.Mutex{}
		b.mirrors[dir] = mu
	}
	return mu
}

// Build exports exactly the commit req.Ref resolves to (never the working
// tree), reads gantry.yml from it, runs each service's build command inside
// the export, stores each service's artifacts as one deterministic tarball,
// and returns the Release with its ID left empty for the caller to assign.
//
// Services built with docker are built by b.Images from the same export
// (skipped with a note when the builder has no Images). A service with
// neither build nor docker gets the whole exported tree as its artifact, as
// scripts do.
func (b *Builder) Build(ctx context.Context, req Request) (*gantry.Release, error) {
	start := time.Now()
	if b.Artifacts == nil || b.Decode == nil || b.WorkDir == "" {
		return nil, gantry.Errorf(gantry.EINTERNAL, "builder is missing its artifact store, manifest decoder or work directory")
	}
	if req.App == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "build: app is required")
	}
	if req.Repo == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "build: repository is required")
	}
	p := newProgress(req.Progress)

	gitDir, err := b.gitDir(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	ref, err := checkRef(req.Ref)
	if err != nil {
		return nil, err
	}
	commit, err := revParse(ctx, gitDir, ref)
	if err != nil {
		return nil, err
	}
	// Record the branch a bare HEAD stands for: it says more in the release,
	// and a calver hotfix branch names its version.
	if ref == "HEAD" {
		if br := headBranch(ctx, gitDir); br != "" {
			ref = br
		}
	}
	log := b.logger().With(logApp, req.App, logCommit, shortSHA(commit), logRef, ref)
	p.stepf("resolved %s to %s", ref, commit)

	committed, err := commitTime(ctx, gitDir, commit)
	if err != nil {
		return nil, err
	}
	raw, m, err := b.readManifest(ctx, gitDir, commit)
	if err != nil {
		return nil, err
	}
	if m.App != req.App {
		return nil, gantry.Errorf(gantry.EINVALID, "%s at %s declares app %q, not %q", ManifestFile, shortSHA(commit), m.App, req.App)
	}

	for name, svc := range m.Services {
		if svc == nil {
			delete(m.Services, name)
		} else if svc.Name == "" {
			svc.Name = name // a decoder may leave the map key as the only name
		}
	}

	version, err := b.version(ctx, gitDir, commit, ref, req.Version, m)
	if err != nil {
		return nil, err
	}
	p.stepf("version %s", version)
	log = log.With(logVersion, version)

	if err := os.MkdirAll(b.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	exportDir, err := os.MkdirTemp(b.WorkDir, "export-"+shortSHA(commit)+"-*")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer func() {
		if err := removeAll(exportDir); err != nil {
			log.Warn("remove export", "dir", exportDir, "error", err)
		}
	}()
	if err := export(ctx, gitDir, commit, exportDir); err != nil {
		return nil, err
	}
	p.stepf("exported %s into a clean directory", shortSHA(commit))

	artifacts := map[string]gantry.Artifact{}
	// The commit's files travel with the release, taken before any hook or
	// build command could change them.
	src, err := b.storeSource(ctx, exportDir)
	if err != nil {
		return nil, err
	}
	artifacts[gantry.SourceArtifact] = src
	p.stepf("kept the commit's files: %s", src.Digest)
	if req.BeforeBuild != nil {
		if err := req.BeforeBuild(ctx, exportDir, version, m); err != nil {
			return nil, err
		}
	}

	// Each service's own version is known before anything is built: an
	// image is labelled with it, never with the release's version or
	// commit, so that a service whose files and version did not change
	// gets the same image, hence the same digest, and is left running.
	own, err := b.serviceVersions(ctx, gitDir, commit, m)
	if err != nil {
		return nil, err
	}
	env := buildEnv(os.Getenv, req.App, version, commit)
	// Services with the same command and artifacts share one build: the
	// environment does not name the service, so the result is the same.
	done := map[string]gantry.Artifact{}
	for _, svc := range m.ServicesInOrder() {
		switch {
		case svc.Build != nil:
			key := svc.Build.Command + "\x00" + strings.Join(svc.Build.Artifacts, "\x00")
			if a, ok := done[key]; ok {
				artifacts[svc.Name] = a
				p.stepf("%s: same build as another service, reusing %s", svc.Name, a.Digest)
				continue
			}
			a, err := b.buildService(ctx, p, log, exportDir, svc, env)
			if err != nil {
				return nil, err
			}
			done[key] = a
			artifacts[svc.Name] = a
		case svc.Docker != nil && b.Images != nil:
			a, err := b.buildImage(ctx, p, log, exportDir, m, svc, version, own[svc.Name], commit)
			if err != nil {
				return nil, err
			}
			artifacts[svc.Name] = a
		case svc.Docker != nil:
			p.stepf("%s: skipped: docker image builds need a Docker Engine, and this builder has none", svc.Name)
			log.Warn("docker service skipped", logService, svc.Name)
		default:
			a, err := b.storeTree(ctx, exportDir)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", svc.Name, err)
			}
			artifacts[svc.Name] = a
			p.stepf("%s: no build step; the commit's files are its artifact %s", svc.Name, a.Digest)
		}
	}

	for _, svc := range m.ServicesInOrder() {
		a, ok := artifacts[svc.Name]
		if v := own[svc.Name]; v != "" && ok { // not built: a docker service without an engine
			a.Version = v
			artifacts[svc.Name] = a
			p.stepf("%s: version %s", svc.Name, v)
		}
	}

	// The database migrations travel with the release, so that a deploy, a
	// promotion or a rollback applies exactly the migrations of its commit.
	if db := m.Database; db != nil && db.Migrations.Dir != "" {
		if _, err := os.Stat(filepath.Join(exportDir, db.Migrations.Dir)); err != nil {
			return nil, gantry.Errorf(gantry.EINVALID, "database.migrations.dir %q is not in commit %s", db.Migrations.Dir, shortSHA(commit))
		}
		if err := contained(exportDir, []string{db.Migrations.Dir}, "database.migrations.dir"); err != nil {
			return nil, err
		}
		a, err := b.storeTarball(ctx, exportDir, []string{db.Migrations.Dir})
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		artifacts[gantry.MigrationsArtifact] = a
		p.stepf("migrations %s: %s", db.Migrations.Dir, a.Digest)
	}

	sum := sha256.Sum256(raw)
	rel := &gantry.Release{
		App:            req.App,
		Version:        version,
		Commit:         commit,
		CommittedAt:    committed,
		Ref:            ref,
		Artifacts:      artifacts,
		Manifest:       raw,
		ManifestDigest: "sha256:" + hex.EncodeToString(sum[:]),
		Builder:        req.Builder,
		CreatedAt:      b.now(),
	}
	log.Info("release built", logElapsed, time.Since(start).Round(time.Millisecond))
	p.stepf("built %s %s from %s", rel.App, rel.Version, shortSHA(commit))
	return rel, nil
}

// readManifest reads gantry.yml from the commit and decodes it.
func (b *Builder) readManifest(ctx context.Context, gitDir, commit string) ([]byte, *gantry.Manifest, error) {
	raw, ok, err := showFile(ctx, gitDir, commit, ManifestFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	if !ok {
		return nil, nil, gantry.Errorf(gantry.EINVALID, "commit %s has no %s at its root", shortSHA(commit), ManifestFile)
	}
	m, err := b.Decode(ManifestFile, raw)
	if err != nil {
		code := gantry.ErrorCode(err)
		if code == gantry.EINTERNAL {
			code = gantry.EINVALID // a decoder's plain error is about the input
		}
		return nil, nil, gantry.Errorf(code, "commit %s: %s", shortSHA(commit), errMessage(err))
	}
	if m == nil {
		return nil, nil, gantry.Errorf(gantry.EINTERNAL, "manifest decoder returned nothing for %s", ManifestFile)
	}
	return raw, m, nil
}

// serviceVersions gives each service its own version when it has one: its
// version_file, or a "<service>/…" tag on the commit, read by the rules of
// the app's version scheme.
func (b *Builder) serviceVersions(ctx context.Context, gitDir, commit string, m *gantry.Manifest) (map[string]string, error) {
	tags, err := tagsAt(ctx, gitDir, commit)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	versions := map[string]string{}
	for _, svc := range m.ServicesInOrder() {
		var own []string
		for _, t := range tags {
			if rest, ok := strings.CutPrefix(t, svc.Name+"/"); ok {
				own = append(own, rest)
			}
		}
		var vf []byte
		if svc.VersionFile != "" {
			var found bool
			if vf, found, err = showFile(ctx, gitDir, commit, svc.VersionFile); err != nil {
				return nil, fmt.Errorf("read %s: %w", svc.VersionFile, err)
			} else if !found {
				return nil, gantry.Errorf(gantry.EINVALID, "services.%s.version_file %q is not in commit %s", svc.Name, svc.VersionFile, shortSHA(commit))
			}
		}
		if len(own) == 0 && len(vf) == 0 {
			continue
		}
		sort.Strings(own)
		v, err := DeriveVersion(m.Version.Scheme, "", string(vf), own, "", b.now())
		if err != nil {
			return nil, gantry.Errorf(gantry.ErrorCode(err), "version of service %s: %s", svc.Name, gantry.ErrorMessage(err))
		}
		versions[svc.Name] = v
	}
	return versions, nil
}

// version derives the release's version from the override, the commit's
// VERSION file, the tags on the commit and the ref.
func (b *Builder) version(ctx context.Context, gitDir, commit, ref, override string, m *gantry.Manifest) (string, error) {
	vf, _, err := showFile(ctx, gitDir, commit, "VERSION")
	if err != nil {
		return "", fmt.Errorf("read VERSION: %w", err)
	}
	tags, err := tagsAt(ctx, gitDir, commit)
	if err != nil {
		return "", fmt.Errorf("list tags: %w", err)
	}
	sort.Strings(tags)
	return DeriveVersion(m.Version.Scheme, override, string(vf), tags, ref, b.now())
}

// storeTree stores every file of the export, for services without a build.
func (b *Builder) storeTree(ctx context.Context, dir string) (gantry.Artifact, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return gantry.Artifact{}, err
	}
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Name())
	}
	return b.storeTarball(ctx, dir, paths)
}

// removeAll removes dir even when a build left read-only directories in it
// (Go's module cache does, for one).
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
