package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
)

var _ gantry.WorkflowService = (*Orchestrator)(nil)

// Clone creates environment Dst with Src's settings, variables and secret
// references, and deploys to it the release Src runs. Its hosts follow its
// name. The new environment records where it came from.
func (o *Orchestrator) Clone(ctx context.Context, req gantry.CloneRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	if err := validEnvName(req.Dst); err != nil {
		return nil, err
	}
	src, err := o.Store.FindEnvironment(ctx, req.App, req.Src)
	if err != nil {
		return nil, err
	}
	if _, err := o.Store.FindEnvironment(ctx, req.App, req.Dst); err == nil {
		return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q already exists", req.Dst)
	}
	active := src.ActiveSlot()
	if active == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q runs nothing to clone", req.Src)
	}
	if err := o.checkFreeze(req.Src, &src.Spec, ""); err != nil {
		return nil, err
	}
	spec := src.Spec
	spec.Hosts = renameHosts(src.Spec.Hosts, req.Src, req.Dst)
	spec.PromoteFrom = ""
	spec.Approvals = nil
	spec.Freeze = nil
	dst := &gantry.Environment{App: req.App, Name: req.Dst, Spec: spec, ClonedFrom: req.Src, CreatedAt: o.now()}
	rel, err := o.Store.FindRelease(ctx, req.App, active.ReleaseID)
	if err != nil {
		return nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	var cp *copyPlan
	if req.WithData {
		if cp, err = o.planCopy(ctx, src, dst, m); err != nil {
			return nil, err
		}
	}
	d := &gantry.Deployment{App: req.App, Env: req.Dst, Kind: gantry.KindClone, ReleaseID: active.ReleaseID, Version: active.Version, FromEnv: req.Src, Actor: req.Actor}
	r, unlock, err := o.begin(ctx, d, false, progress)
	if err != nil {
		return nil, err
	}
	defer unlock()
	err = r.step(ctx, "create", fmt.Sprintf("%s from %s, hosts %s", req.Dst, req.Src, strings.Join(spec.Hosts, ",")), func() (string, error) {
		return "", o.saveEnv(ctx, dst)
	})
	if err != nil {
		return d, r.finish(ctx, err)
	}
	if cp != nil {
		if err := o.copyData(ctx, r, cp, req.PostCopy); err != nil {
			return d, r.finish(ctx, err)
		}
	}
	err = o.deploy(ctx, r, rel, m, &spec, gantry.StrategyBlueGreen)
	return d, r.finish(ctx, err)
}

func validEnvName(name string) error {
	if name == "" || len(name) > 63 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return gantry.Errorf(gantry.EINVALID, "environment name %q: use lower-case letters, digits and dashes", name)
	}
	return nil
}

// Rename renames Old to New, moving its history with it and its traffic to
// New's hosts. When New exists, it is first renamed to DisplaceTo (test →
// testold), so that the two renames of a migration (testnew → test) are one
// journaled operation. Each step is idempotent: running the same rename
// again after an interruption finishes it.
func (o *Orchestrator) Rename(ctx context.Context, req gantry.RenameRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	if err := validEnvName(req.New); err != nil {
		return nil, err
	}
	if req.DisplaceTo != "" {
		if err := validEnvName(req.DisplaceTo); err != nil {
			return nil, err
		}
	}
	old, err := o.Store.FindEnvironment(ctx, req.App, req.Old)
	if err != nil {
		return nil, err
	}
	if err := o.checkFreeze(req.Old, &old.Spec, ""); err != nil {
		return nil, err
	}
	displaced, err := o.Store.FindEnvironment(ctx, req.App, req.New)
	switch {
	case err == nil && req.DisplaceTo == "":
		return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q exists; rename it out of the way with --displace-to NAME (e.g. %sold)", req.New, req.New)
	case err == nil:
		if err := o.checkFreeze(req.New, &displaced.Spec, ""); err != nil {
			return nil, err
		}
	case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		displaced = nil
	default:
		return nil, err
	}
	if displaced != nil {
		if _, err := o.Store.FindEnvironment(ctx, req.App, req.DisplaceTo); err == nil {
			return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q exists already: choose another --displace-to", req.DisplaceTo)
		}
	}
	version := ""
	if a := old.ActiveSlot(); a != nil {
		version = a.Version
	}
	d := &gantry.Deployment{App: req.App, Env: req.New, Kind: gantry.KindRename, Version: version, FromEnv: req.Old, Actor: req.Actor}
	if a := old.ActiveSlot(); a != nil {
		d.ReleaseID = a.ReleaseID
	}
	// Every name involved is locked for the whole operation.
	var unlocks []func()
	defer func() {
		for _, u := range unlocks {
			u()
		}
	}()
	for _, name := range []string{req.Old, req.DisplaceTo} {
		if name == "" || (name == req.DisplaceTo && displaced == nil) {
			continue
		}
		l := &gantry.Lock{App: req.App, Env: name, Holder: req.Actor, Operation: "rename " + req.Old + " → " + req.New, Since: o.now()}
		if err := o.Store.AcquireLock(ctx, l); err != nil {
			return nil, err
		}
		unlocks = append(unlocks, func() { _ = o.Store.ReleaseLock(context.WithoutCancel(ctx), req.App, name, req.Actor, true) })
	}
	r, unlock, err := o.begin(ctx, d, false, progress)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if displaced != nil {
		if err := o.renameOne(ctx, r, displaced, req.DisplaceTo, true); err != nil {
			return d, r.finish(ctx, err)
		}
	}
	return d, r.finish(ctx, o.renameOne(ctx, r, old, req.New, false))
}

// renameOne renames one environment: its record and history, then its
// traffic: the route under the new name takes the new hosts and the
// environment's instances (a health-gated switch, so the hosts of an
// environment being displaced move without a failed request), and the old
// route goes away, unless keepRoute: a displaced environment's old route
// keeps serving its hosts until the environment taking its name switches it.
func (o *Orchestrator) renameOne(ctx context.Context, r *run, env *gantry.Environment, newName string, keepRoute bool) error {
	oldName := env.Name
	var m *gantry.Manifest
	if a := env.ActiveSlot(); a != nil {
		m = o.manifestOfRelease(ctx, env.App, a.ReleaseID)
	}
	err := r.step(ctx, "rename", oldName+" → "+newName, func() (string, error) {
		return "", o.Store.RenameEnvironment(ctx, env.App, oldName, newName)
	})
	if err != nil {
		return err
	}
	env, err = o.Store.FindEnvironment(ctx, env.App, newName)
	if err != nil {
		return err
	}
	// The new name's hosts: as the manifest declares them for that name, or
	// derived from the old ones.
	var declared *gantry.EnvironmentSpec
	if m != nil {
		declared = m.Environments[newName]
	}
	if declared != nil {
		env.Spec.Hosts = declared.Hosts
		env.Spec.PromoteFrom = declared.PromoteFrom
		env.Spec.Approvals = declared.Approvals
	} else {
		env.Spec.Hosts = renameHosts(env.Spec.Hosts, oldName, newName)
	}
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	return r.step(ctx, "move-traffic", fmt.Sprintf("%s now serves %s", newName, strings.Join(env.Spec.Hosts, ",")), func() (string, error) {
		if a := env.ActiveSlot(); a != nil && m != nil {
			if targets := webTargets(a, m); len(targets) > 0 {
				if _, err := o.Router.Deploy(ctx, o.route(env, m), targets); err != nil {
					return "", err
				}
			}
		}
		if keepRoute {
			return "", nil
		}
		if err := o.Router.RemoveRoute(ctx, gantry.RouteName(env.App, oldName)); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			return "", err
		}
		return "", nil
	})
}

// DeleteEnvironment stops an environment and removes it, keeping its
// history. An environment that takes traffic is refused unless forced.
func (o *Orchestrator) DeleteEnvironment(ctx context.Context, req gantry.DeleteEnvironmentRequest) error {
	env, err := o.Store.FindEnvironment(ctx, req.App, req.Env)
	if err != nil {
		return err
	}
	if a := env.ActiveSlot(); a != nil && len(a.Instances) > 0 && !req.Force {
		return gantry.Errorf(gantry.EPOLICY, "environment %q takes traffic (%s on slot %s); --force stops it and deletes it", req.Env, a.Version, a.Name)
	}
	l := &gantry.Lock{App: req.App, Env: req.Env, Holder: req.Actor, Operation: "delete", Since: o.now()}
	if err := o.Store.AcquireLock(ctx, l); err != nil {
		return err
	}
	defer o.Store.ReleaseLock(context.WithoutCancel(ctx), req.App, req.Env, req.Actor, true)
	if err := o.Router.RemoveRoute(ctx, gantry.RouteName(req.App, req.Env)); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return err
	}
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	for _, s := range env.Slots {
		if len(s.Instances) == 0 {
			continue
		}
		if err := o.stopSlot(ctx, env, drv, s, o.manifestOfRelease(ctx, req.App, s.ReleaseID)); err != nil {
			return err
		}
	}
	return o.Store.DeleteEnvironment(ctx, req.App, req.Env)
}
