package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Gates are the one place where policy is decided. Every operation that
// changes what an environment serves is planned as an op and passes every
// gate below, in this order, after the environment's lock is taken (so that
// what a gate read cannot change before the operation acts) and before
// anything is recorded or started. A gate that refuses returns EPOLICY with
// a message that starts with the gate's name and says which command would
// be allowed.
//
// No operation is exempt: a direct deploy meets promote_from and approvals
// as a promotion does, a warm rollback and the watch's automatic rollback
// meet the schema gate as a cold deploy does, a rename onto a name meets
// that name's policy.

// Gate names, as refusals begin with them.
const (
	GateFreeze             = "freeze"
	GatePromoteFrom        = "promote_from"
	GateApprovals          = "approvals"
	GateMigrationsViaClone = "migrations_via_clone"
	GateSchema             = "schema"
	GatePreviews           = "previews"
	GateRequires           = "requires"
)

// gate is one policy check of an op.
type gate struct {
	name  string
	check func(o *Orchestrator, ctx context.Context, op *op) error
}

// gates lists every gate in the order they are evaluated.
var gates = []gate{
	{GateFreeze, (*Orchestrator).gateFreeze},
	{GatePromoteFrom, (*Orchestrator).gatePromoteFrom},
	{GateApprovals, (*Orchestrator).gateApprovals},
	{GateMigrationsViaClone, (*Orchestrator).gateMigrationsViaClone},
	{GateRequires, (*Orchestrator).gateRequires},
	{GateSchema, (*Orchestrator).gateSchema},
	{GatePreviews, (*Orchestrator).gatePreviews},
}

// checkGates evaluates every gate for op.
func (o *Orchestrator) checkGates(ctx context.Context, op *op) error {
	for _, g := range gates {
		if err := g.check(o, ctx, op); err != nil {
			return err
		}
	}
	return nil
}

// refuse is a gate's refusal: EPOLICY, the gate's name first, then why,
// then what would be allowed.
func refuse(gate, allowed, format string, args ...any) error {
	msg := gate + ": " + fmt.Sprintf(format, args...)
	if allowed != "" {
		msg += "; allowed: " + allowed
	}
	return gantry.Errorf(gantry.EPOLICY, "%s", msg)
}

// gateFreeze refuses a change inside a freeze window of the configuration
// running now or of the one the change brings (so that an older release
// cannot lift a freeze), unless a break-glass reason is given; it is then
// journaled by the operation.
func (o *Orchestrator) gateFreeze(_ context.Context, op *op) error {
	specs := []*gantry.EnvironmentSpec{op.spec}
	if op.current != nil {
		specs = append(specs, &op.current.Spec)
	}
	specs = append(specs, op.alsoFrozen...)
	return o.checkFreeze(op.env, op.breakGlass, specs...)
}

// gatePromoteFrom: an environment with promote_from takes only the release
// that its source runs, verified, or one it served itself before (a
// rollback or a redeploy).
func (o *Orchestrator) gatePromoteFrom(ctx context.Context, op *op) error {
	src := op.spec.PromoteFrom
	if src == "" || op.rel == nil {
		return nil
	}
	if op.kind == gantry.KindPromote && op.fromEnv != src {
		return refuse(GatePromoteFrom, fmt.Sprintf("gantry promote %s %s", src, op.env),
			"environment %q is promoted from %q, not from %q", op.env, src, op.fromEnv)
	}
	served, err := o.servedBefore(ctx, op)
	if err != nil || served {
		return err
	}
	env, err := o.Store.FindEnvironment(ctx, op.app, src)
	if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return err
	}
	var a *gantry.Slot
	if env != nil {
		a = env.ActiveSlot()
	}
	switch {
	case a != nil && a.ReleaseID == op.rel.ID && a.Verified:
		return nil // what the source ran, verified: a promotion, whatever the verb
	case a != nil && a.ReleaseID == op.rel.ID:
		return refuse(GatePromoteFrom, fmt.Sprintf("gantry deploy %s --release %s (to verify it again)", src, op.rel.ID),
			"release %s runs on %q but did not pass its health and verify checks there", op.rel.Version, src)
	}
	running := "runs nothing"
	if a != nil {
		running = "runs " + a.Version
	}
	return refuse(GatePromoteFrom, fmt.Sprintf("gantry deploy %s --release %s, then gantry promote %s %s", src, op.rel.ID, src, op.env),
		"environment %q only takes what %q ran, and release %s never served on %q (%q %s)", op.env, src, op.rel.Version, src, src, running)
}

// gateApprovals: the approvals an environment requires (the hotfix
// channel's for a hotfix release) for a release it has not served before.
func (o *Orchestrator) gateApprovals(ctx context.Context, op *op) error {
	p := approvalPolicy(op.spec, op.rel)
	if p == nil || p.Required <= 0 || op.rel == nil {
		return nil
	}
	served, err := o.servedBefore(ctx, op)
	if err != nil || served {
		return err
	}
	return o.checkApprovals(ctx, op, p)
}

// gateMigrationsViaClone: an environment with migrations_via_clone takes a
// migration (the major or minor version changes) only from an environment
// cloned from it (W2: testnew, renamed to test, then promoted).
func (o *Orchestrator) gateMigrationsViaClone(ctx context.Context, op *op) error {
	if !op.spec.MigrationsViaClone || op.rel == nil || op.current == nil || op.current.ActiveSlot() == nil {
		return nil // a first deploy migrates nothing
	}
	from := op.current.ActiveSlot().Version
	if classify(from, op.rel.Version) != "migration" {
		return nil
	}
	served, err := o.servedBefore(ctx, op)
	if err != nil || served {
		return err
	}
	if op.source != nil && op.source.ClonedFrom == op.env {
		return nil
	}
	via := "an environment that was not cloned from it"
	if op.fromEnv == "" {
		via = "a direct deploy"
	} else if op.source != nil {
		via = fmt.Sprintf("%q, which was not cloned from it", op.fromEnv)
	}
	return refuse(GateMigrationsViaClone, fmt.Sprintf("gantry env clone %s NEW, deploy %s to NEW, then promote it", op.env, op.rel.Version),
		"%s → %s is a migration, and %q takes migrations only from an environment cloned from it, not from %s", from, op.rel.Version, op.env, via)
}

// gateSchema: the release that would serve must work with the database as
// it is now. A release that predates a completed migration needs a schema
// that is gone: refused, unless forced, when the documented database
// rollback (restoring the snapshot taken before the change) is done first.
func (o *Orchestrator) gateSchema(ctx context.Context, op *op) error {
	if op.rel == nil || op.kind == gantry.KindClone || op.kind == gantry.KindRename || op.current == nil {
		return nil
	}
	b, err := o.dbBinding(op.current, op.m)
	if err != nil || b == nil {
		return err
	}
	if op.m.Database.AppMigrates() {
		return o.gateAppSchema(ctx, op, b)
	}
	plan, err := o.planFor(ctx, op.current, b, op.rel, op.m, op.strategy == gantry.StrategyMaintenance)
	if err != nil {
		return err
	}
	op.dbPlan = plan
	if plan.Action != gantry.PlanRefuse && !(op.flip && plan.Action != gantry.PlanNone) {
		return nil
	}
	if op.flip && plan.Action != gantry.PlanRefuse {
		return refuse(GateSchema, fmt.Sprintf("gantry rollback %s --to %s --force (a cold redeploy migrates)", op.env, op.rel.ID),
			"the warm slot runs %s, whose migration(s) %s are no longer in the database", op.rel.Version, strings.Join(plan.Pending, ", "))
	}
	if op.force && op.kind == gantry.KindRollback && strings.Contains(plan.Reason, "predates") {
		op.dbRollbackFirst = b
		return nil
	}
	allowed := ""
	if strings.Contains(plan.Reason, "predates") {
		cmd := fmt.Sprintf("gantry rollback %s --force", op.env)
		if op.kind != gantry.KindRollback {
			cmd = fmt.Sprintf("gantry rollback %s --to %s --force", op.env, op.rel.ID)
		}
		allowed = fmt.Sprintf("%s (restores the database's snapshot from before the change; %s written since would be lost)",
			cmd, o.writesSince(ctx, b, o.contractSnapshot(ctx, b)))
	}
	return refuse(GateSchema, allowed, "release %s and the database of %q do not fit: %s", op.rel.Version, op.env, plan.Reason)
}

// servedBefore says whether op's release already served on op's
// environment: a slot runs it, or a deployment of it succeeded there. A
// rollback or a redeploy of such a release needs no new promotion or
// approval. The answer is kept for the other gates.
func (o *Orchestrator) servedBefore(ctx context.Context, op *op) (bool, error) {
	if op.served != nil {
		return *op.served, nil
	}
	served := false
	if op.current != nil && op.kind != gantry.KindRename {
		for _, s := range op.current.Slots {
			if s.ReleaseID == op.rel.ID && (s.State == gantry.SlotActive || s.State == gantry.SlotStandby) {
				served = true
			}
		}
	}
	if !served {
		ds, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: op.app, Env: op.env, State: gantry.DeploymentSucceeded, Limit: 1000})
		if err != nil {
			return false, err
		}
		for _, d := range ds {
			if d.ReleaseID == op.rel.ID && d.Kind != gantry.KindRename {
				served = true
				break
			}
		}
	}
	op.served = &served
	return served, nil
}

// gatePreviews bounds how many preview environments an app has at once:
// a clone that makes one more than the manifest's previews.max is refused
// (the oldest is not evicted: a reviewer's preview never disappears under
// them; the TTL or a merge frees a place).
func (o *Orchestrator) gatePreviews(ctx context.Context, op *op) error {
	if op.kind != gantry.KindClone || op.clone.dst.Preview == nil {
		return nil
	}
	if op.m.Previews == nil {
		return refuse(GatePreviews, "", "release %s declares no previews: section in its gantry.yml", op.rel.Version)
	}
	// Counted and recorded as one step: held until the clone's create
	// step has saved the new preview (or the clone ends before it).
	if op.clone.counted == nil {
		op.clone.counted = o.holdPreviews(op.app)
	}
	envs, err := o.Store.ListEnvironments(ctx, op.app)
	if err != nil {
		return err
	}
	var previews []*gantry.Environment
	for _, e := range envs {
		if e.Preview != nil && e.Name != op.env {
			previews = append(previews, e)
		}
	}
	slices.SortFunc(previews, func(a, b *gantry.Environment) int { return a.CreatedAt.Compare(b.CreatedAt) })
	names := make([]string, len(previews))
	for i, e := range previews {
		names[i] = e.Name
	}
	if len(names) >= op.m.Previews.Max {
		return refuse(GatePreviews, "gantry env delete "+names[0]+" --force", "app %s has %d preview environments (%s), its previews.max", op.app, len(names), strings.Join(names, ", "))
	}
	return nil
}
