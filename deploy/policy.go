package deploy

import (
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

// Steps that only record what was decided before the operation started.
const (
	stepBreakGlass = "break-glass" // the reason given to pass a freeze
	stepClassify   = "classify"    // a deployment or a migration
)

// recordPolicy reports what policy has to say about this deployment: a
// break-glass reason, and whether it is a deployment or a migration. Both
// steps only record; start wrote them, done, with the deployment's record
// (policySteps), so here they are reported, each started and then done,
// not written again.
func (o *Orchestrator) recordPolicy(r *run, op *op) {
	for _, s := range r.recorded {
		started := s.Detail
		if s.Name == stepBreakGlass {
			started = op.breakGlass
			o.logger().Warn("break glass", "app", r.d.App, "env", r.d.Env, "actor", r.d.Actor, "reason", op.breakGlass)
		}
		r.emit(s.Name, gantry.StepStarted, started)
		r.emit(s.Name, s.State, s.Detail)
		if r.o.OnStep != nil {
			r.o.OnStep(r.d, s)
		}
		r.d.Steps = append(r.d.Steps, s)
	}
	r.recorded = nil
}

// policySteps are the steps recordPolicy reports for op, done, for start
// to write with the deployment's record of actor's op; none for the
// operations that record no policy (clone, rename, continue).
func policySteps(op *op, actor string) []gantry.Step {
	switch op.kind {
	case gantry.KindClone, gantry.KindRename, gantry.KindContinue:
		return nil
	}
	var steps []gantry.Step
	if op.breakGlass != "" {
		steps = append(steps, gantry.Step{Name: stepBreakGlass, State: gantry.StepDone, Detail: breakGlassRecord(actor, op.breakGlass)})
	}
	return append(steps, gantry.Step{Name: stepClassify, State: gantry.StepDone, Detail: classifyDetail(op)})
}

// RecordOnly tells the steps that only record what was decided before the
// operation started: a break-glass reason, and the class of the change.
// start journals them done, with the deployment's record, so each is one
// journal event (done; OnStep sees no "started" of them), and a rollback
// reaches its switch with one synced write fewer.
func RecordOnly(step string) bool { return step == stepBreakGlass || step == stepClassify }

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
