package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// checkFreeze refuses a change inside one of the environment's freeze
// windows, unless a break-glass reason is given. The windows are those of
// every spec given: the configuration running now and the one the change
// brings, so that deploying an older release cannot lift a freeze.
func (o *Orchestrator) checkFreeze(env string, spec *gantry.EnvironmentSpec, breakGlass string, more ...*gantry.EnvironmentSpec) error {
	now := o.now()
	var windows []gantry.FreezeWindow
	for _, s := range append([]*gantry.EnvironmentSpec{spec}, more...) {
		if s != nil {
			windows = append(windows, s.Freeze...)
		}
	}
	for _, w := range windows {
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
