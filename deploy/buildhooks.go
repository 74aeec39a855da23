package deploy

import (
	"context"
	"fmt"
	"os"

	"github.com/gantry-dev/gantry"
)

// BuildHook is called by the builder in the clean export of the commit
// (dir), with the version it derived and the commit's manifest, after the
// commit's files are kept and before any service is built. An error stops
// the build. It has the shape of build.BeforeBuildFunc, which cmd/gantry
// converts it to.
type BuildHook func(ctx context.Context, dir, version string, m *gantry.Manifest) error

// buildHooks runs one build's before_build and after_build hooks. The
// builder decodes the manifest of the commit; before keeps it for after, so
// both phases run the hooks of the commit being built.
type buildHooks struct {
	s      *Releases
	app    *gantry.App
	req    gantry.BuildRequest
	commit string
	say    func(step, msg string)
	m      *gantry.Manifest
}

// before runs the before_build hooks in the build's export: build hooks see
// exactly the commit's files, never the server's directory or a working
// tree with uncommitted changes.
func (h *buildHooks) before(ctx context.Context, dir, version string, m *gantry.Manifest) error {
	h.m = m
	if h.s.Hooks == nil || m == nil || len(m.Hooks["before_build"]) == 0 {
		return nil
	}
	// HOME is not the export: what tools cache there must not end up in
	// the build's artifacts.
	home, err := os.MkdirTemp("", "gantry-build-home-")
	if err != nil {
		return fmt.Errorf("before_build hooks: %w", err)
	}
	defer removeTree(home)
	hc := gantry.HookContext{App: h.app.Name, Commit: h.commit, Version: version, Actor: h.req.Actor, Phase: "before_build", Dir: dir, Home: home}
	summary, _, err := h.s.Hooks.RunPhase(ctx, m.Hooks, hc)
	if err != nil {
		return err
	}
	h.say("hooks before_build", summary)
	return nil
}

// after runs the after_build hooks once the release is recorded. The export
// is gone by then, so commands run in the release's kept files, which are
// the same commit's files as the export was before the build.
func (h *buildHooks) after(ctx context.Context, rel *gantry.Release) {
	if h.s.Hooks == nil || h.m == nil || len(h.m.Hooks["after_build"]) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx) // the release is recorded: report whatever happens
	hc := gantry.HookContext{App: h.app.Name, Release: rel.ID, Version: rel.Version, Commit: rel.Commit, Actor: h.req.Actor, Phase: "after_build"}
	files := newReleaseFiles(h.s.Artifacts, rel)
	defer files.Close()
	if err := hookDir(ctx, files, h.m.Hooks["after_build"], &hc); err != nil {
		h.say("hooks after_build", "FAILED: "+err.Error())
		return
	}
	summary, failed, _ := h.s.Hooks.RunPhase(ctx, h.m.Hooks, hc)
	if failed {
		summary = "FAILED after retries: " + summary
	}
	h.say("hooks after_build", summary)
}

// keepSource adds the commit's files to an imported release, so that its
// verify commands and hooks have them to run in, as a built release's do.
func (s *Releases) keepSource(ctx context.Context, app *gantry.App, commit string, arts map[string]gantry.Artifact) error {
	if s.Source == nil {
		return nil
	}
	a, err := s.Source(ctx, app.Repo, commit)
	if err != nil {
		return fmt.Errorf("keep the files of commit %s: %w", short(commit), err)
	}
	arts[gantry.SourceArtifact] = a
	return nil
}
