package deploy

import (
	"context"

	"github.com/gantry-dev/gantry"
)

// Promote deploys to To exactly the release that is active and verified on
// From: the same release record, so the same digests. It never rebuilds.
func (o *Orchestrator) Promote(ctx context.Context, req gantry.PromoteRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	if req.From == req.To {
		return nil, gantry.Errorf(gantry.EINVALID, "cannot promote %q to itself", req.From)
	}
	src, err := o.Store.FindEnvironment(ctx, req.App, req.From)
	if err != nil {
		return nil, err
	}
	active := src.ActiveSlot()
	if active == nil {
		return nil, refuse(GatePromoteFrom, "gantry deploy "+req.From+" --release ID", "environment %q runs no release to promote", req.From)
	}
	if !active.Verified {
		return nil, refuse(GatePromoteFrom, "gantry deploy "+req.From+" --release "+active.ReleaseID+" (to verify it again)",
			"release %s on %q did not pass health and verify checks; promotion refused", active.Version, req.From)
	}
	rel, err := o.Store.FindRelease(ctx, req.App, active.ReleaseID)
	if err != nil {
		return nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	spec, ok := m.Environments[req.To]
	if !ok {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q is not declared in the manifest of release %s", req.To, rel.Version)
	}
	if spec.PromoteFrom == "" {
		return nil, refuse(GatePromoteFrom, "gantry deploy "+req.To+" --release "+rel.ID,
			"environment %q does not accept promotions (no promote_from); deploy a release to it instead", req.To)
	}
	op, err := o.planDeploy(ctx, gantry.DeployRequest{App: req.App, Env: req.To, Release: rel.ID, Actor: req.Actor,
		BreakGlass: req.BreakGlass, Wait: req.Wait, Strategy: req.Strategy, PauseAfter: req.PauseAfter}, gantry.KindPromote)
	if err != nil {
		return nil, err
	}
	op.fromEnv, op.source = req.From, src
	return o.execute(ctx, op, progress)
}
