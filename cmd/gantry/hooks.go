package main

import (
	"context"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/hook"
)

// hookRunner adapts package hook to the orchestrator's HookRunner.
type hookRunner struct{ r *hook.Runner }

var _ gantry.HookRunner = hookRunner{}

func (h hookRunner) RunPhase(ctx context.Context, hooks map[string][]gantry.Hook, hc gantry.HookContext) (string, bool, error) {
	// An app's command never runs in the server's working directory: a
	// caller that gave no directory is a bug, refused rather than run there.
	if hc.Dir == "" {
		for _, hk := range hooks[hc.Phase] {
			if hk.Command != "" {
				err := gantry.Errorf(gantry.EINTERNAL, "%s hooks of %s: a command hook needs the release's files to run in, and none were given", hc.Phase, hc.App)
				return err.Error(), true, err
			}
		}
	}
	results, err := h.r.Phase(ctx, hooks, hookContext(hc))
	return hook.Summarize(results), len(hook.Failed(results)) > 0, err
}

func (h hookRunner) Notify(ctx context.Context, targets []gantry.NotifyTarget, d *gantry.Deployment, rel *gantry.Release, vars, secrets map[string]string) {
	if len(targets) == 0 {
		return
	}
	ev := hook.EventFor(d, rel)
	ev.Vars, ev.Secrets = vars, secrets
	h.r.Notify(ctx, targets, ev)
}

func hookContext(hc gantry.HookContext) hook.Context {
	return hook.Context{App: hc.App, Env: hc.Env, Release: hc.Release, Version: hc.Version, Commit: hc.Commit,
		Actor: hc.Actor, Phase: hc.Phase, DeploymentID: hc.DeploymentID, URL: hc.URL, Dir: hc.Dir, Home: hc.Home, Vars: hc.Vars, Secrets: hc.Secrets}
}
