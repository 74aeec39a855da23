package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// Deploy runs a deployment to completion and returns its record. On any
// failure before the switch the candidate is stopped and the release that
// was serving keeps serving.
func (o *Orchestrator) Deploy(ctx context.Context, req gantry.DeployRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	op, err := o.planDeploy(ctx, req, gantry.KindDeploy)
	if err != nil {
		return nil, err
	}
	return o.execute(ctx, op, progress)
}

// DeployOrdered deploys like Deploy, with the options of an ordered
// rollout: pauseAfter (when not nil) pauses the deployment once that order
// group is healthy, keeping the environment's lock until Continue; only
// (when not empty) redeploys that one service, the others keeping the
// release they run on the active slot.
func (o *Orchestrator) DeployOrdered(ctx context.Context, req gantry.DeployRequest, pauseAfter *int, only string, progress gantry.Progress) (*gantry.Deployment, error) {
	if pauseAfter != nil {
		req.PauseAfter = pauseAfter
	}
	if only != "" {
		req.Only = only
	}
	return o.Deploy(ctx, req, progress)
}

// planDeploy makes the op that puts req's release on req's environment.
func (o *Orchestrator) planDeploy(ctx context.Context, req gantry.DeployRequest, kind string) (*op, error) {
	existing, err := o.Store.FindEnvironment(ctx, req.App, req.Env)
	if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return nil, err
	}
	return o.planDeployOn(ctx, req, kind, existing)
}

// planDeployOn is planDeploy on the environment's record as the caller
// has just read it (nil: none yet); execute reads it again under the lock.
func (o *Orchestrator) planDeployOn(ctx context.Context, req gantry.DeployRequest, kind string, existing *gantry.Environment) (*op, error) {
	if req.Release == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "no release given")
	}
	rel, err := o.Store.FindRelease(ctx, req.App, req.Release)
	if err != nil {
		return nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	spec, ok := specFor(m, existing, req.Env)
	if !ok {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q is not declared in the manifest of release %s (declared: %s)", req.Env, rel.Version, strings.Join(envNames(m), ", "))
	}
	strategy := req.Strategy
	if strategy == "" {
		strategy = spec.Strategy
	}
	if strategy == "" {
		strategy = gantry.StrategyBlueGreen
	}
	if strategy != gantry.StrategyBlueGreen && strategy != gantry.StrategyRestart && strategy != gantry.StrategyMaintenance && strategy != gantry.StrategyCanary {
		return nil, gantry.Errorf(gantry.EINVALID, "unknown strategy %q (want bluegreen, restart, maintenance or canary)", strategy)
	}
	op := &op{kind: kind, app: req.App, env: req.Env, actor: req.Actor, rel: rel, m: m, spec: spec, current: existing,
		breakGlass: req.BreakGlass, wait: req.Wait, strategy: strategy, pauseAfter: req.PauseAfter, only: req.Only}
	if err := o.checkOpts(op); err != nil {
		return nil, err
	}
	return op, nil
}

func envNames(m *gantry.Manifest) []string {
	var names []string
	for n := range m.Environments {
		names = append(names, n)
	}
	return names
}

// loadEnv returns the environment's record, creating it from spec on first use,
// and refreshes its spec from the release being deployed (configuration is
// versioned with the code).
func (o *Orchestrator) loadEnv(ctx context.Context, app, name string, spec *gantry.EnvironmentSpec) (*gantry.Environment, error) {
	env, err := o.Store.FindEnvironment(ctx, app, name)
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		env = &gantry.Environment{App: app, Name: name, CreatedAt: o.now()}
	} else if err != nil {
		return nil, err
	}
	if spec != nil {
		env.Spec = *spec
	}
	return env, nil
}

func (o *Orchestrator) saveEnv(ctx context.Context, env *gantry.Environment) error {
	env.UpdatedAt = o.now()
	return o.Store.PutEnvironment(context.WithoutCancel(ctx), env)
}

// contractStep journals a contract when one is due.
func (o *Orchestrator) contractStep(ctx context.Context, r *run, env *gantry.Environment, m *gantry.Manifest) error {
	if o.Databases == nil || m.Database == nil || m.Database.AppMigrates() {
		return nil
	}
	return r.step(ctx, "db-contract", "when no slot needs the old schema", func() (string, error) {
		msg, err := o.contractIfDue(ctx, env, m)
		if msg == "" && err == nil {
			msg = "nothing to contract"
		}
		return msg, err
	})
}

// promoteSlot makes slot active and the other one the warm standby.
func (o *Orchestrator) promoteSlot(env *gantry.Environment, slot string, keepWarm time.Duration) {
	now := o.now()
	if prev := env.Slots[gantry.OtherSlot(slot)]; prev != nil && prev.State == gantry.SlotActive {
		prev.State = gantry.SlotStandby
		prev.WarmUntil = now.Add(keepWarm)
		prev.Since = now
	}
	s := env.Slot(slot)
	s.State = gantry.SlotActive
	s.Since = now
	s.WarmUntil = time.Time{}
	env.Active = slot
}

func webTargets(s *gantry.Slot, m *gantry.Manifest) []string {
	var out []string
	for _, inst := range s.Instances {
		if svc := m.Services[inst.Service]; svc != nil && svc.HTTP && inst.Addr != "" {
			out = append(out, inst.Addr)
		}
	}
	return out
}

func (o *Orchestrator) verifyArtifacts(ctx context.Context, rel *gantry.Release) (string, error) {
	for svc, a := range rel.Artifacts {
		if a.Kind != gantry.ArtifactTarball {
			continue
		}
		ok, err := o.Artifacts.Has(ctx, a.Digest)
		if err != nil {
			return "", err
		}
		if !ok {
			what := "service " + svc
			if gantry.IsReservedArtifact(svc) {
				what = svc
			}
			return "", gantry.Errorf(gantry.ENOTFOUND, "artifact %s of %s (release %s) is missing from the artifact store", a.Digest, what, rel.ID)
		}
	}
	return fmt.Sprintf("%d artifacts present", len(rel.Artifacts)), nil
}

// errNoInstances is returned when a release has nothing to run.
var errNoInstances = errors.New("release has no services to run")

// withDetail appends detail (log lines) to err's user-visible message,
// keeping its code.
func withDetail(err error, detail string) error {
	code := gantry.ErrorCode(err)
	msg := gantry.ErrorMessage(err)
	if code == gantry.EINTERNAL {
		msg = err.Error()
	}
	return &gantry.Error{Code: code, Message: msg + "\n" + detail}
}
