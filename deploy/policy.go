package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// checkFreeze refuses a change inside one of the environment's freeze
// windows, unless a break-glass reason is given.
func (o *Orchestrator) checkFreeze(env string, spec *gantry.EnvironmentSpec, breakGlass string) error {
	now := o.now()
	for _, w := range spec.Freeze {
		if now.Before(w.From) || !now.Before(w.To) {
			continue
		}
		if breakGlass != "" {
			return nil
		}
		reason := ""
		if w.Reason != "" {
			reason = " (" + w.Reason + ")"
		}
		return gantry.Errorf(gantry.EPOLICY, "environment %q is frozen from %s until %s%s; give --break-glass REASON to go ahead anyway (it is recorded)",
			env, w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), reason)
	}
	return nil
}

// recordPolicy journals what policy has to say about this deployment: a
// break-glass reason, and whether it is a deployment or a migration.
func (o *Orchestrator) recordPolicy(ctx context.Context, r *run, env *gantry.Environment, rel *gantry.Release, breakGlass string) error {
	if breakGlass != "" {
		if err := r.step(ctx, "break-glass", breakGlass, func() (string, error) {
			o.logger().Warn("break glass", "app", r.d.App, "env", r.d.Env, "actor", r.d.Actor, "reason", breakGlass)
			return "by " + r.d.Actor + ": " + breakGlass, nil
		}); err != nil {
			return err
		}
	}
	from := ""
	if env != nil {
		if a := env.ActiveSlot(); a != nil {
			from = a.Version
		}
	}
	class := classify(from, rel.Version)
	detail := fmt.Sprintf("%s: %s → %s", class, orNone(from), rel.Version)
	return r.step(ctx, "classify", detail, func() (string, error) { return detail, nil })
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}
