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
	held, err := o.holdRoutes(ctx, r, "hold-writes", name, r.d.App, r.d.Env, true, "no route yet: nothing to hold")
	if err != nil {
		return err
	}
	defer o.letGo(ctx, r, "release-writes", name, held)
	return o.deployOrdered(ctx, r, op)
}
