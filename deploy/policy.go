package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// checkFreeze refuses a change of environment env inside a freeze window of
// any of specs (nil ones are skipped), unless a break-glass reason is given.
func (o *Orchestrator) checkFreeze(env, breakGlass string, specs ...*gantry.EnvironmentSpec) error {
	now := o.now()
	for _, s := range specs {
		if s == nil {
			continue
		}
		for _, w := range s.Freeze {
			if now.Before(w.From) || !now.Before(w.To) || breakGlass != "" {
				continue
			}
			reason := ""
			if w.Reason != "" {
				reason = " (" + w.Reason + ")"
			}
			return refuse(GateFreeze, "the same command with --break-glass REASON (it is recorded)",
				"environment %q is frozen from %s until %s%s", env, w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), reason)
		}
	}
	return nil
}

// recordPolicy journals what policy has to say about this deployment: a
// break-glass reason, and whether it is a deployment or a migration. Both
// steps only record; start wrote them, done, with the deployment's record
// (policySteps), so here they are reported, not written again.
func (o *Orchestrator) recordPolicy(ctx context.Context, r *run, op *op) error {
	if op.breakGlass != "" {
		if err := r.step(ctx, "break-glass", op.breakGlass, func() (string, error) {
			o.logger().Warn("break glass", "app", r.d.App, "env", r.d.Env, "actor", r.d.Actor, "reason", op.breakGlass)
			return breakGlassRecord(r.d.Actor, op.breakGlass), nil
		}); err != nil {
			return err
		}
	}
	detail := classifyDetail(op)
	return r.step(ctx, "classify", detail, func() (string, error) { return detail, nil })
}

// policySteps are the steps recordPolicy journals for op, as they end, for
// start to write with the deployment's record of actor's op; none for the
// operations that record no policy (clone, rename, continue).
func policySteps(op *op, actor string) []gantry.Step {
	switch op.kind {
	case gantry.KindClone, gantry.KindRename, gantry.KindContinue:
		return nil
	}
	var steps []gantry.Step
	if op.breakGlass != "" {
		steps = append(steps, gantry.Step{Name: "break-glass", State: gantry.StepDone, Detail: breakGlassRecord(actor, op.breakGlass)})
	}
	detail := classifyDetail(op)
	return append(steps, gantry.Step{Name: "classify", State: gantry.StepDone, Detail: detail})
}

// RecordOnly tells the steps that only record what was decided before the
// operation started: a break-glass reason, and the class of the change.
// start journals them done, with the deployment's record, so each is one
// journal event (done; OnStep sees no "started" of them), and a rollback
// reaches its switch with one synced write fewer.
func RecordOnly(step string) bool { return step == "break-glass" || step == "classify" }

// breakGlassRecord is the break-glass step's record of actor's reason.
func breakGlassRecord(actor, reason string) string { return "by " + actor + ": " + reason }

// classifyDetail says whether op is a deployment or a migration, from
// what serves to op's release.
func classifyDetail(op *op) string {
	from := ""
	if op.current != nil {
		if a := op.current.ActiveSlot(); a != nil {
			from = a.Version
		}
	}
	return fmt.Sprintf("%s: %s → %s", classify(from, op.rel.Version), orNone(from), op.rel.Version)
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}
