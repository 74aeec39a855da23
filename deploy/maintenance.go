package deploy

import (
	"context"

	"github.com/gantry-dev/gantry"
)

// deployHoldingWrites is the maintenance strategy, for a schema change that
// cannot be made compatible: the router holds writes (everything but
// GET/HEAD/OPTIONS) and lets the ones in flight finish, every pending
// migration is applied completely, the new release starts and takes over,
// and the held writes are released to it in order. Writes held past the
// route's pause bound get 503 with Retry-After: each write is either done
// by the new release or cleanly refused, never half applied.
func (o *Orchestrator) deployHoldingWrites(ctx context.Context, r *run, op *op) error {
	name := gantry.RouteName(r.d.App, r.d.Env)
	var held []string
	err := r.step(ctx, "hold-writes", name, func() (string, error) {
		var err error
		held, err = o.pauseRoutes(ctx, r.d.App, r.d.Env, true)
		if err == nil && len(held) == 0 {
			return "no route yet: nothing to hold", nil
		}
		return "", err
	})
	if err != nil {
		return err
	}
	defer o.letGo(ctx, r, "release-writes", name, held)
	return o.deployOrdered(ctx, r, op)
}
