package deploy

import (
	"context"
	"net/url"
	"strings"

	"github.com/gantry-dev/gantry"
)

// phaseOf names the hook phases around an operation of kind.
func phaseOf(kind string) string {
	switch kind {
	case gantry.KindPromote:
		return "promote"
	case gantry.KindRollback:
		return "rollback"
	}
	return "deploy"
}

// runHooks runs the manifest's hooks of one phase. A before_* hook that
// fails stops the operation; an after_* hook that still fails after its
// retries is journaled as a failed step, which the deployment's record and
// the dashboard show, and the operation stands. Commands run in the
// release's unpacked files (see releaseFiles), never in the server's
// working directory.
func (o *Orchestrator) runHooks(ctx context.Context, r *run, m *gantry.Manifest, rel *gantry.Release, env *gantry.Environment, phase, host string) error {
	if o.Hooks == nil || m == nil || len(m.Hooks[phase]) == 0 {
		return nil
	}
	files := newReleaseFiles(o.Artifacts, rel)
	defer files.Close()
	hc := gantry.HookContext{App: r.d.App, Env: r.d.Env, Release: rel.ID, Version: rel.Version, Commit: rel.Commit,
		Actor: r.d.Actor, Phase: phase, DeploymentID: r.d.ID, URL: o.hostURL(host)}
	hc.Vars, hc.Secrets = o.hookValues(env)
	name := "hooks " + phase
	if strings.HasPrefix(phase, "before_") {
		return r.step(ctx, name, "", func() (string, error) {
			if err := hookDir(ctx, files, m.Hooks[phase], &hc); err != nil {
				return "", err
			}
			summary, _, err := o.Hooks.RunPhase(ctx, m.Hooks, hc)
			return summary, err
		})
	}
	return r.step(ctx, name, "", func() (string, error) {
		if err := hookDir(ctx, files, m.Hooks[phase], &hc); err != nil {
			// Nothing ran: like a hook that kept failing, this cannot undo
			// the phase, so it is reported and the operation stands.
			r.softFail = true
			msg := gantry.ErrorMessage(err)
			if gantry.ErrorCode(err) == gantry.EINTERNAL {
				msg = err.Error()
			}
			return "FAILED: " + msg, nil
		}
		summary, failed, _ := o.Hooks.RunPhase(context.WithoutCancel(ctx), m.Hooks, hc)
		if failed {
			r.softFail = true
			return "FAILED after retries: " + summary, nil
		}
		return summary, nil
	})
}

// hookDir sets hc.Dir to the release's files, and hc.Home beside them, when
// hooks run a command.
func hookDir(ctx context.Context, files *releaseFiles, hooks []gantry.Hook, hc *gantry.HookContext) error {
	if !hasCommand(hooks) {
		return nil
	}
	dir, err := files.Dir(ctx)
	if err != nil {
		return err
	}
	hc.Dir, hc.Home = dir, files.Home()
	return nil
}

// hostURL is the URL of host through the router.
func (o *Orchestrator) hostURL(host string) string {
	if host == "" || o.RouterURL == "" {
		return ""
	}
	u, err := url.Parse(o.RouterURL)
	if err != nil {
		return ""
	}
	return "http://" + host + ":" + u.Port()
}

// hookValues are env's variables and secret values, which hooks and
// notifications see and fill their ${NAME} placeholders from.
func (o *Orchestrator) hookValues(env *gantry.Environment) (vars, secrets map[string]string) {
	if env == nil {
		return nil, nil
	}
	secrets = map[string]string{}
	for _, name := range env.Spec.Secrets {
		if v, ok := o.secretValue(env.App, env.Name, name); ok {
			secrets[name] = v
		}
	}
	return env.ExpandedVars(), secrets
}

// notify announces a deployment's state, without holding it up, with the
// values of env (the one hooks see) for the targets' placeholders.
func (o *Orchestrator) notify(d *gantry.Deployment, rel *gantry.Release, m *gantry.Manifest, env *gantry.Environment) {
	if o.Hooks == nil || m == nil || len(m.Notify) == 0 {
		return
	}
	dc := *d
	vars, secrets := o.hookValues(env)
	go o.Hooks.Notify(context.Background(), m.Notify, &dc, rel, vars, secrets)
}
