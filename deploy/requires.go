package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
)

// gateRequires: what would serve must keep every services.<service>.requires
// true, before anything starts. It checks the requirements of op's release
// (on its own services, by the version each would run, and on other apps'
// releases active on the environment of the same name) and those of the
// other apps on that environment that require op's app.
//
// A requirement on an app with no such environment, or with nothing
// active on it, is not checked: there is nothing it could break yet. A
// clone and a rename create an environment name the other apps do not
// have, so only their own app's requirements are checked.
func (o *Orchestrator) gateRequires(ctx context.Context, op *op) error {
	if op.rel == nil || op.m == nil {
		return nil
	}
	versions, err := o.servingVersions(ctx, op)
	if err != nil {
		return err
	}
	crossApp := op.kind != gantry.KindClone && op.kind != gantry.KindRename
	for _, s := range op.m.ServicesInOrder() {
		for _, target := range slices.Sorted(maps.Keys(s.Requires)) {
			c, err := gantry.ParseConstraint(s.Requires[target])
			if err != nil {
				return gantry.Errorf(gantry.EINVALID, "services.%s.requires.%s: %v", s.Name, target, err)
			}
			who := fmt.Sprintf("%s %s", s.Name, versions[s.Name])
			if app, ok := strings.CutPrefix(target, gantry.RequiredApp); ok {
				if !crossApp {
					continue
				}
				have, found, err := o.appVersion(ctx, app, op.env)
				if err != nil || !found || c.Allows(have) {
					if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
						return err
					}
					continue
				}
				return refuse(GateRequires, fmt.Sprintf("bring app %s to a version %s on %s first", app, c, op.env),
					"%s requires app %s %s, and %s runs %s on %q", who, app, c, app, have, op.env)
			}
			have, ok := versions[target]
			if !ok {
				return refuse(GateRequires, fmt.Sprintf("a release of %s that has service %s", op.app, target),
					"%s requires %s %s, and release %s has no service %s", who, target, c, op.rel.Version, target)
			}
			if !c.Allows(have) {
				return refuse(GateRequires, fmt.Sprintf("a release whose %s is %s", target, c),
					"%s requires %s %s, and release %s would run %s %s on %q", who, target, c, op.rel.Version, target, have, op.env)
			}
		}
	}
	if !crossApp {
		return nil
	}
	return o.requiredBy(ctx, op)
}

// requiredBy checks the requirements other apps active on op's
// environment have on op's app against the release that would serve.
func (o *Orchestrator) requiredBy(ctx context.Context, op *op) error {
	apps, err := o.Store.ListApps(ctx)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.Name == op.app {
			continue
		}
		rel, m, err := o.activeRelease(ctx, a.Name, op.env)
		if err != nil || rel == nil {
			if gantry.ErrorCode(err) == gantry.ENOTFOUND {
				continue
			}
			return err
		}
		for _, s := range m.ServicesInOrder() {
			raw, ok := s.Requires[gantry.RequiredApp+op.app]
			if !ok {
				continue
			}
			c, err := gantry.ParseConstraint(raw)
			if err != nil || c.Allows(op.rel.Version) {
				continue
			}
			return refuse(GateRequires, fmt.Sprintf("a release of %s that is %s, or first a release of %s that no longer needs it", op.app, c, a.Name),
				"%s %s (app %s on %q) requires app %s %s, and %s would be %s", s.Name, rel.ServiceVersion(s.Name), a.Name, op.env, op.app, c, op.app, op.rel.Version)
		}
	}
	return nil
}

// servingVersions is the version of each service of op's app once op is
// done: the release's, or, for the services a one-service deploy leaves
// alone, the one they run.
func (o *Orchestrator) servingVersions(ctx context.Context, op *op) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range op.m.ServicesInOrder() {
		out[s.Name] = op.rel.ServiceVersion(s.Name)
	}
	if op.only == "" || op.current == nil || op.current.ActiveSlot() == nil {
		return out, nil
	}
	rels := map[string]*gantry.Release{}
	for _, inst := range op.current.ActiveSlot().Instances {
		if inst.Service == op.only || inst.ReleaseID == "" {
			continue
		}
		r, ok := rels[inst.ReleaseID]
		if !ok {
			var err error
			if r, err = o.Store.FindRelease(ctx, op.app, inst.ReleaseID); err != nil {
				return nil, err
			}
			rels[inst.ReleaseID] = r
		}
		out[inst.Service] = r.ServiceVersion(inst.Service)
	}
	return out, nil
}

// appVersion is the version of the release active on app's environment
// env; found is false when there is none.
func (o *Orchestrator) appVersion(ctx context.Context, app, env string) (version string, found bool, err error) {
	rel, _, err := o.activeRelease(ctx, app, env)
	if err != nil || rel == nil {
		return "", false, err
	}
	return rel.Version, true, nil
}

// activeRelease is the release active on app's environment env and its
// manifest, nil when nothing is active.
func (o *Orchestrator) activeRelease(ctx context.Context, app, env string) (*gantry.Release, *gantry.Manifest, error) {
	e, err := o.Store.FindEnvironment(ctx, app, env)
	if err != nil {
		return nil, nil, err
	}
	a := e.ActiveSlot()
	if a == nil || a.ReleaseID == "" {
		return nil, nil, nil
	}
	rel, err := o.Store.FindRelease(ctx, app, a.ReleaseID)
	if err != nil {
		return nil, nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, nil, err
	}
	return rel, m, nil
}
