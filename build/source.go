package build

import (
	"context"
	"fmt"
	"os"

	"github.com/gantry-dev/gantry"
)

// BeforeBuildFunc runs the manifest's before_build hooks. It is called in
// the clean export of the commit (dir), once the manifest is read, the
// version derived and the commit's files kept, and before any service is
// built; an error stops the build.
type BeforeBuildFunc func(ctx context.Context, dir, version string, m *gantry.Manifest) error

// storeSource keeps the clean export of the commit as the release's
// gantry.SourceArtifact, before any command can change it: verify commands
// and hooks later run in an unpacked copy of it. The tarball is
// deterministic, so two builds of one commit keep the same digest.
func (b *Builder) storeSource(ctx context.Context, exportDir string) (gantry.Artifact, error) {
	a, err := b.storeTree(ctx, exportDir)
	if err != nil {
		return gantry.Artifact{}, fmt.Errorf("keep the commit's files: %w", err)
	}
	return a, nil
}

// Source exports commit of repo into a fresh directory under WorkDir, keeps
// it in the artifact store as a release's gantry.SourceArtifact and removes
// the export. Imported image releases, which the builder does not build,
// keep their commit's files this way.
func (b *Builder) Source(ctx context.Context, repo, commit string) (gantry.Artifact, error) {
	if b.Artifacts == nil || b.WorkDir == "" {
		return gantry.Artifact{}, gantry.Errorf(gantry.EINTERNAL, "builder is missing its artifact store or work directory")
	}
	gitDir, err := b.gitDir(ctx, repo)
	if err != nil {
		return gantry.Artifact{}, err
	}
	ref, err := checkRef(commit)
	if err != nil {
		return gantry.Artifact{}, err
	}
	full, err := revParse(ctx, gitDir, ref)
	if err != nil {
		return gantry.Artifact{}, err
	}
	if err := os.MkdirAll(b.WorkDir, 0o755); err != nil {
		return gantry.Artifact{}, fmt.Errorf("keep the commit's files: %w", err)
	}
	dir, err := os.MkdirTemp(b.WorkDir, "source-"+shortSHA(full)+"-*")
	if err != nil {
		return gantry.Artifact{}, fmt.Errorf("keep the commit's files: %w", err)
	}
	defer func() {
		if err := removeAll(dir); err != nil {
			b.logger().Warn("remove export", "dir", dir, "error", err)
		}
	}()
	if err := export(ctx, gitDir, full, dir); err != nil {
		return gantry.Artifact{}, err
	}
	return b.storeSource(ctx, dir)
}
