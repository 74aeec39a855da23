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
// the dashboard show, and the operation stands.
func (o *Orchestrator) runHooks(ctx context.Context, r *run, m *gantry.Manifest, rel *gantry.Release, env *gantry.Environment, phase, host string) error {
	if o.Hooks == nil || m == nil || len(m.Hooks[phase]) == 0 {
		return nil
	}
	hc := gantry.HookContext{App: r.d.App, Env: r.d.Env, Release: rel.ID, Version: rel.Version, Commit: rel.Commit,
		Actor: r.d.Actor, Phase: phase, DeploymentID: r.d.ID, URL: o.hostURL(host)}
	if env != nil {
		hc.Vars = env.Spec.Vars
		hc.Secrets = map[string]string{}
		for _, name := range env.Spec.Secrets {
			if v, ok := o.secretValue(env.App, env.Name, name); ok {
				hc.Secrets[name] = v
			}
		}
	}
	name := "hooks " + phase
	if strings.HasPrefix(phase, "before_") {
		return r.step(ctx, name, "", func() (string, error) {
			summary, _, err := o.Hooks.RunPhase(ctx, m.Hooks, hc)
			return summary, err
		})
	}
	return r.step(ctx, name, "", func() (string, error) {
		summary, failed, _ := o.Hooks.RunPhase(context.WithoutCancel(ctx), m.Hooks, hc)
		if failed {
			r.softFail = true
			return "FAILED after retries: " + summary, nil
		}
		return summary, nil
	})
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

func firstHost(hosts []string) string {
	for _, h := range hosts {
		if !strings.HasPrefix(h, "*.") {
			return h
		}
	}
	return ""
}

// notify announces a deployment's state, without holding it up.
func (o *Orchestrator) notify(d *gantry.Deployment, rel *gantry.Release, m *gantry.Manifest) {
	if o.Hooks == nil || m == nil || len(m.Notify) == 0 {
		return
	}
	dc := *d
	go o.Hooks.Notify(context.Background(), m.Notify, &dc, rel)
}
