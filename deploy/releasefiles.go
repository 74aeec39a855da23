package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/tarball"
)

// releaseFiles is a release's kept files (gantry.SourceArtifact, the clean
// export of its commit) unpacked into a temporary directory, where the
// app's own commands run: verify commands and hooks. They never run in the
// server's working directory, which may be a working tree with uncommitted
// changes. The files are unpacked on first use, so that an operation
// without commands neither pays for them nor needs them, and removed by
// Close, with the commands' HOME beside them.
type releaseFiles struct {
	arts gantry.ArtifactStore
	rel  *gantry.Release
	root string // holds files/ and home/
}

func newReleaseFiles(arts gantry.ArtifactStore, rel *gantry.Release) *releaseFiles {
	return &releaseFiles{arts: arts, rel: rel}
}

// Dir returns the directory holding the release's files, unpacking them
// the first time. A release built before files were kept has none to run
// commands in: it gets an error saying how to rebuild it, and nothing falls
// back to the server's directory.
func (f *releaseFiles) Dir(ctx context.Context) (string, error) {
	if f.root != "" {
		return filepath.Join(f.root, "files"), nil
	}
	a, ok := f.rel.Artifacts[gantry.SourceArtifact]
	if !ok {
		ref := f.rel.Ref
		if ref == "" {
			ref = f.rel.Commit
		}
		return "", gantry.Errorf(gantry.EINVALID, "release %s predates kept files: it carries no copy of its commit's files (%s) to run its verify commands and hooks in; rebuild it with `gantry release build --ref %s --rebuild` and deploy the new release",
			f.rel.ID, gantry.SourceArtifact, ref)
	}
	if f.arts == nil {
		return "", gantry.Errorf(gantry.EINTERNAL, "no artifact store to unpack the files of release %s from", f.rel.ID)
	}
	root, err := os.MkdirTemp("", "gantry-release-")
	if err != nil {
		return "", fmt.Errorf("files of release %s: %w", f.rel.ID, err)
	}
	dir := filepath.Join(root, "files")
	if err := f.unpack(ctx, a.Digest, dir, filepath.Join(root, "home")); err != nil {
		removeTree(root)
		return "", fmt.Errorf("files of release %s: %w", f.rel.ID, err)
	}
	f.root = root
	return dir, nil
}

func (f *releaseFiles) unpack(ctx context.Context, digest, dir, home string) error {
	for _, d := range []string{dir, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	rc, err := f.arts.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return tarball.Extract(rc, dir)
}

// Home is the commands' HOME: an empty directory beside the files (once
// Dir has unpacked them), so what tools cache there does not mix with the
// release's files.
func (f *releaseFiles) Home() string {
	if f.root == "" {
		return ""
	}
	return filepath.Join(f.root, "home")
}

// Close removes the unpacked files, with whatever the commands left there.
func (f *releaseFiles) Close() {
	if f.root != "" {
		removeTree(f.root)
		f.root = ""
	}
}

// removeTree removes dir even when a command left read-only directories in
// it: Go's module cache in HOME, for one, is written read-only.
func removeTree(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

// hasCommand reports whether any of hooks runs a command, and so needs the
// release's files; webhooks do not.
func hasCommand(hooks []gantry.Hook) bool {
	for _, h := range hooks {
		if h.Command != "" {
			return true
		}
	}
	return false
}
