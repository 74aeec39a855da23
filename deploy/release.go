package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

var (
	_ gantry.DeployService  = (*Orchestrator)(nil)
	_ gantry.ReleaseService = (*Releases)(nil)
)

// Releases builds releases once per commit and records them.
type Releases struct {
	Store gantry.Store
	// Resolve turns a ref of a repository into a full commit sha.
	Resolve func(ctx context.Context, repo, ref string) (string, error)
	// Build exports the commit, keeps its files (gantry.SourceArtifact),
	// calls before in the export, builds it and stores its artifacts; the
	// release it returns has no ID yet.
	Build func(ctx context.Context, app *gantry.App, req gantry.BuildRequest, before BuildHook, out io.Writer) (*gantry.Release, error)
	// Manifest reads the gantry.yml of a ref (for imports); CheckImage checks
	// that a registry serves an image by its digest. Both are nil without
	// Docker support.
	Manifest   func(ctx context.Context, repo, ref string) (commit string, raw []byte, m *gantry.Manifest, err error)
	CheckImage func(ctx context.Context, ref string) (gantry.Artifact, error)
	// Hooks runs the manifest's before_build and after_build hooks; nil runs none.
	Hooks gantry.HookRunner
	// Artifacts holds the releases' kept files, where after_build commands run.
	Artifacts gantry.ArtifactStore
	// Source keeps the files of a commit (for imports, which build nothing);
	// nil keeps none.
	Source func(ctx context.Context, repo, commit string) (gantry.Artifact, error)
	// CommitTime reads when a commit was made (for imports, whose lead time
	// starts there); nil records none.
	CommitTime func(ctx context.Context, repo, commit string) (time.Time, error)
}

// BuildRelease returns the release of ref's commit, building it when there is
// none (or when req.Rebuild).
func (s *Releases) BuildRelease(ctx context.Context, req gantry.BuildRequest, progress gantry.Progress) (*gantry.Release, error) {
	app, err := s.Store.FindApp(ctx, req.App)
	if err != nil {
		return nil, err
	}
	if req.Ref == "" {
		req.Ref = "HEAD"
	}
	start := time.Now()
	say := func(step, msg string) {
		if progress != nil {
			progress(gantry.Event{Step: step, Message: msg, Elapsed: time.Since(start)})
		}
	}
	commit, err := s.Resolve(ctx, app.Repo, req.Ref)
	if err != nil {
		return nil, err
	}
	say("resolve", fmt.Sprintf("%s is %s", req.Ref, commit))
	existing, err := s.Store.ListReleases(ctx, gantry.ReleaseFilter{App: app.Name, Commit: commit, Limit: 100})
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 && !req.Rebuild && (req.Version == "" || req.Version == existing[0].Version) {
		say("reuse", fmt.Sprintf("commit %s was built before as release %s; reusing it (--rebuild to build again)", short(commit), existing[0].ID))
		return existing[0], nil
	}
	hooks := &buildHooks{s: s, app: app, req: req, commit: commit, say: say}
	rel, err := s.Build(ctx, app, req, hooks.before, progressWriter{step: "build", say: say})
	if err != nil {
		return nil, err
	}
	if rel.Commit != commit {
		return nil, gantry.Errorf(gantry.ECONFLICT, "%s moved from %s to %s during the build; build again", req.Ref, short(commit), short(rel.Commit))
	}
	rel.ID = fmt.Sprintf("%s-%s", rel.Version, short(rel.Commit))
	if n := len(existing); n > 0 {
		rel.ID = fmt.Sprintf("%s.%d", rel.ID, n+1)
	}
	rel.Builder = req.Actor
	if err := s.Store.CreateRelease(ctx, rel); err != nil {
		return nil, err
	}
	say("release", fmt.Sprintf("release %s recorded", rel.ID))
	hooks.after(ctx, rel)
	return rel, nil
}

// progressWriter turns build output into progress events, one per line.
type progressWriter struct {
	step string
	say  func(step, msg string)
}

func (w progressWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.say(w.step, line)
		}
	}
	return len(p), nil
}

// Logs writes the output of an environment's active instances.
func (o *Orchestrator) Logs(ctx context.Context, app, envName, service string, tail int, follow bool, w io.Writer) error {
	env, err := o.Store.FindEnvironment(ctx, app, envName)
	if err != nil {
		return err
	}
	slot := env.ActiveSlot()
	if slot == nil {
		return gantry.Errorf(gantry.ENOTFOUND, "environment %q runs nothing", envName)
	}
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	var insts []gantry.Instance
	for _, inst := range slot.Instances {
		if service == "" || inst.Service == service {
			insts = append(insts, inst)
		}
	}
	if len(insts) == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "environment %q has no running instance of service %q", envName, service)
	}
	if !follow {
		for _, inst := range insts {
			fmt.Fprintf(w, "==> %s-%d (%s) <==\n", inst.Service, inst.Index, slot.Version)
			if err := drv.Logs(ctx, inst, tail, false, w); err != nil {
				return err
			}
		}
		return nil
	}
	// Following several instances: one goroutine each, lines prefixed.
	errc := make(chan error, len(insts))
	for _, inst := range insts {
		pw := &prefixWriter{w: w, prefix: fmt.Sprintf("%s-%d | ", inst.Service, inst.Index)}
		go func() { errc <- drv.Logs(ctx, inst, tail, true, pw) }()
	}
	var first error
	for range insts {
		if err := <-errc; err != nil && first == nil && ctx.Err() == nil {
			first = err
		}
	}
	return first
}
